"""`suppression sync ...`: the destination worker and its operator commands.

suppression sync                 one pass over every enabled destination
suppression sync --loop          pass after pass (the Procfile's worker)
suppression sync --full          reconcile first: queue everyone not confirmed
suppression sync retry           put parked rows back in the queue
suppression sync status          the queue and health per destination
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from suppression.cli.context import load_settings, opened
from suppression.connectors.settings import DESTINATION_NAMES, log_warnings
from suppression.observability.logs import configure_logging
from suppression.services.consents.intake import backlog
from suppression.services.destinations.planning import PassReport
from suppression.services.destinations.registry import destination_statuses
from suppression.services.destinations.settle import retry_parked
from suppression.store.schema import utcnow
from suppression.worker.destination_sync import DestinationSync
from suppression.worker.feedback_receipts import receipt_forgetter


def rfc3339(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value else None


def _echo_report(report: PassReport) -> None:
    parts = [
        f"{key} {value}"
        for key, value in report.as_dict().items()
        if key not in ("destination", "error", "paused_until", "pending") and value
    ]
    line = f"{report.destination}: " + (", ".join(parts) if parts else "nothing due")
    if report.pending:
        line += f"; {report.pending} still waiting"
    if report.paused_until:
        line += f"; paused until {rfc3339(report.paused_until)}"
    if report.error:
        line += f"; last error: {report.error}"
    click.echo(line)


@click.group(invoke_without_command=True)
@click.option("--loop", is_flag=True, help="Keep running, pass after pass (the worker).")
@click.option(
    "--full",
    is_flag=True,
    help="First recompute what each destination should hold and queue the difference.",
)
@click.option(
    "--destination",
    "names",
    multiple=True,
    type=click.Choice(DESTINATION_NAMES),
    help="Only this destination (repeatable); default every enabled one.",
)
@click.pass_context
def sync(ctx: click.Context, loop: bool, full: bool, names: tuple[str, ...]) -> None:
    """Push suppressions to the destinations (Keap, Meta, Google, LinkedIn, Microsoft)."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_settings()
    configure_logging(settings)
    logging.getLogger("suppression").setLevel(logging.INFO)
    log_warnings(settings.destinations)
    disabled = [n for n in names if not settings.destinations.is_enabled(n)]
    if disabled:
        raise click.ClickException(f"not enabled: {', '.join(disabled)} (see docs/destinations.md)")
    if not settings.destinations.enabled:
        click.echo("no destination is enabled; see docs/destinations.md")
    with opened(settings) as runtime:
        chores: list[Callable[[], object]] = [receipt_forgetter(runtime.sessions, runtime.clock)]
        if runtime.mailer is not None:
            chores.append(runtime.mailer.drain)
        worker = DestinationSync(runtime.sessions, runtime.vault, settings, chores=chores)
        try:
            if loop:
                _run_loop(worker, full)
            else:
                for report in worker.run_pass(list(names) or None, full=full):
                    _echo_report(report)
        finally:
            worker.close()


def _run_loop(worker: DestinationSync, full: bool) -> None:
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        click.echo(f"signal {signum}: finishing the current batch, then stopping", err=True)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    click.echo(f"sync worker {worker.worker} started")

    def report(reports: list[PassReport]) -> None:
        for item in reports:
            if item.worked or item.error:
                _echo_report(item)

    worker.run_forever(stop, full_first=full, on_pass=report)
    click.echo("sync worker stopped")


@sync.command("retry")
@click.option(
    "--destination",
    type=click.Choice(DESTINATION_NAMES),
    help="Only this destination; default every one.",
)
def sync_retry(destination: str | None) -> None:
    """Put parked (failed) rows back in the queue with a fresh attempt budget."""
    settings = load_settings()
    with opened(settings) as runtime, runtime.sessions() as session:
        count = retry_parked(session, destination)
        session.commit()
    where = f" for {destination}" if destination else ""
    click.echo(f"{count} parked rows{where} queued again; the next pass pushes them")


@sync.command("status")
def sync_status() -> None:
    """Queue and health per destination, and the one-click intake's backlog; exits
    1 when rows are parked or overdue."""
    settings = load_settings()
    now = utcnow()
    deadline = timedelta(hours=settings.destinations.sync.deadline_hours)
    with opened(settings) as runtime, runtime.sessions() as session:
        statuses = destination_statuses(session, settings.destinations, now)
        intake = backlog(session, now, deadline)
    alarm = False
    for status in statuses:
        state = "enabled" if status.enabled else "disabled"
        line = (
            f"{status.name}\t{state}\tpending {status.pending}\tfailed {status.failed}"
            f"\toverdue {status.overdue}\tlast success {rfc3339(status.last_success_at) or '-'}"
        )
        if status.last_error:
            line += f"\tlast error {rfc3339(status.last_error_at)}: {status.last_error}"
        if status.warning:
            line += f"\twarning: {status.warning}"
        click.echo(line)
        alarm = alarm or bool(status.failed or status.overdue)
    if intake.waiting:
        # Folded by the worker's every pass (and, unless ONE_CLICK_FOLD=worker, by
        # the web processes): a click older than the deadline means none is running.
        click.echo(
            f"one-click intake\twaiting {intake.waiting}\toldest {rfc3339(intake.oldest)}"
            + ("\toverdue: is the worker running?" if intake.overdue else "")
        )
        alarm = alarm or intake.overdue
    if alarm:
        raise SystemExit(1)
