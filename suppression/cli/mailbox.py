"""`suppression mailbox poll [--loop]`: read the unsubscribe mailbox.

suppression mailbox poll          one pass over the messages waiting now
suppression mailbox poll --loop   a pass every UNSUBSCRIBE_IMAP_INTERVAL seconds (the
                                  Procfile's optional `mailbox` process)
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

import click

from suppression.cli.context import load_settings, opened
from suppression.config.settings import ConfigError
from suppression.observability.logs import configure_logging
from suppression.worker.mailbox_polling import MailboxPoller


@click.group()
def mailbox() -> None:
    """The unsubscribe mailbox (the List-Unsubscribe mailto)."""


@mailbox.command("poll")
@click.option("--loop", is_flag=True, help="Keep polling, every UNSUBSCRIBE_IMAP_INTERVAL.")
def mailbox_poll(loop: bool) -> None:
    """Opt out whoever each waiting mail names, then move the mail out of the folder.
    Exits 1 when a one-off pass could not read the mailbox."""
    settings = load_settings()
    if not settings.mailbox.enabled:
        unset = "UNSUBSCRIBE_IMAP_URL is not set: there is no mailbox to read (docs/operating.md)"
        if not loop:
            raise click.ClickException(unset)
        # The Procfile's optional process: idle rather than exit, as a runner that
        # starts every line (honcho, foreman) stops them all when one ends.
        stop = threading.Event()
        _stop_on_signals(stop)
        click.echo(f"{unset}; idle until stopped")
        stop.wait()
        return
    configure_logging(settings)
    logging.getLogger("suppression").setLevel(logging.INFO)
    with opened(settings) as runtime:
        try:
            poller = MailboxPoller(
                runtime.sessions, runtime.vault, settings, runtime.link_tokens, runtime.clock
            )
        except (ConfigError, ValueError) as exc:
            raise click.ClickException(str(exc)) from exc
        if loop:
            _run_loop(poller)
            return
        report = poller.run_pass()
    click.echo(report.line())
    if report.error:
        raise SystemExit(1)


def _stop_on_signals(stop: threading.Event) -> None:
    def request_stop(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: finishing the current message, then stopping", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)


def _run_loop(poller: MailboxPoller) -> None:
    stop = threading.Event()
    _stop_on_signals(stop)
    click.echo(f"mailbox poller started on {poller.mailbox.name}")
    poller.run_forever(stop)  # each pass that did something is logged
    click.echo("mailbox poller stopped")
