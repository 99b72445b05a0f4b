"""`suppression mailbox poll`: the mail a client sends to the `List-Unsubscribe`
mailto (RFC 2369), delivered to a real IMAP server on loopback (tests/imap_server.py,
pymap), read by the poller, becomes an opt-out with source `mailto`; the message
then sits in the processed folder, or, naming nobody, in the unmatched one.

The poller run in the test's thread joins the test's transaction like any session;
the command (`suppression mailbox poll`) opens engines of its own and is committed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP, default
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from click.testing import CliRunner
from imap_server import USER, ImapServer, imap_server
from prometheus_client import REGISTRY
from sqlalchemy import select

from suppression.cli.main import main
from suppression.config.mailbox import mailbox_from_env
from suppression.connectors.imap import ImapFolder
from suppression.services.consents.evidence import open_evidence
from suppression.store.models import ConsentEvent
from suppression.worker.mailbox_polling import MailboxPoller

ORIGIN = "https://optout.example.com"
MAILBOX = USER  # the List-Unsubscribe mailto's address is the polled account
JANE = "jane.doe@example.com"


@pytest.fixture
def clock(clock):
    # The command reads tokens on the real clock: the app mints them on it too.
    clock.current = datetime.now(UTC).replace(microsecond=0)
    return clock


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), public_base_url=ORIGIN, unsubscribe_mailbox=MAILBOX)


@pytest.fixture
def server(tmp_path):
    with imap_server("tls", tmp_path) as running:
        yield running


@pytest.fixture
def cli_env(server, database_url, tmp_path, monkeypatch, key_env):
    """The environment the command reads: the test's database and keys, the mailbox."""
    for name, value in {
        **key_env,
        "DATABASE_URL": database_url,
        "SUPPRESSION_INSTANCE": str(tmp_path / "cli-instance"),
        "UNSUBSCRIBE_IMAP_URL": server.url(),
        "UNSUBSCRIBE_IMAP_CA_FILE": server.ca_file,
        "UNSUBSCRIBE_IMAP_TIMEOUT": "10",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    return CliRunner()


def poller_for(app, settings, clock, server) -> MailboxPoller:
    runtime = app.extensions["suppression"]
    environ = {"UNSUBSCRIBE_IMAP_URL": server.url(), "UNSUBSCRIBE_IMAP_TIMEOUT": "10"}
    if server.ca_file:
        environ["UNSUBSCRIBE_IMAP_CA_FILE"] = server.ca_file
    polled = replace(settings, mailbox=mailbox_from_env(environ))
    return MailboxPoller(runtime.sessions, runtime.vault, polled, runtime.link_tokens, clock)


def mint(client, headers, email=JANE, **fields) -> dict:
    response = client.post(
        "/v1/unsubscribe-links", json={"email": email, **fields}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def mailto_of(link: dict) -> str:
    [mailto] = [
        part.strip(" <>")
        for part in link["headers"]["List-Unsubscribe"].split(",")
        if part.strip(" <").startswith("mailto:")
    ]
    return mailto


def apple_mail(mailto: str, sender: str, message_id: str = "<5E1C-77A0@example.net>") -> bytes:
    """What Apple Mail sends when its Unsubscribe button follows a mailto: To the
    mailto's address, the Subject its `subject`, from whichever alias the reader uses."""
    parts = urlsplit(mailto)
    message = EmailMessage()
    message["From"] = f"Jane <{sender}>"
    message["To"] = unquote(parts.path)
    message["Subject"] = parse_qs(parts.query).get("subject", [""])[0]
    message["Date"] = "Sat, 05 Dec 2026 08:15:00 +0100"
    message["Message-ID"] = message_id
    message["X-Mailer"] = "Apple Mail (2.3774.200.91.1.1)"
    message.set_content("This message will unsubscribe you from the mailing list.\n")
    return message.as_bytes(policy=SMTP)


def stranger_mail() -> bytes:
    """A mail with no token, from a From nobody authenticated."""
    message = EmailMessage()
    message["From"] = "Someone <someone@example.com>"
    message["To"] = MAILBOX
    message["Subject"] = "please take me off your list"
    message["Message-ID"] = "<no-token@example.com>"
    message.set_content("Stop sending me mail.\n")
    return message.as_bytes(policy=SMTP)


def events(session) -> list[ConsentEvent]:
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.rollback()
    return found


def decision(client, headers, email=JANE) -> tuple[bool, str]:
    response = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "email_marketing", "addresses": [email]},
        headers=headers,
    )
    result = response.get_json()["results"][0]
    return result["sendable"], result["reason"]


def subjects(raw_messages: list[bytes]) -> list[str]:
    return [str(message_from_bytes(raw, policy=default)["Subject"]) for raw in raw_messages]


def counted(outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("suppression_mailbox_messages_total", {"outcome": outcome}) or 0.0
    )


# The walk of issue 16's "Done when", as a new user would take it.


@pytest.mark.committed
def test_the_mail_apple_mail_sends_to_the_mailto_opts_out_after_a_poll(
    cli_env, server, client, sender, session, vault
):
    link = mint(client, sender, campaign="dec-news")
    mailto = mailto_of(link)
    token = link["url"].rsplit("/", 1)[1]
    assert mailto == f"mailto:{MAILBOX}?subject=unsubscribe%20{token}"
    server.deliver(apple_mail(mailto, sender="jane.alias@example.net"))
    assert decision(client, sender)[0] is True
    before = counted("opted_out")

    result = cli_env.invoke(main, ["mailbox", "poll"])

    assert result.exit_code == 0, result.output
    assert "mailbox: 1 message(s) (opted_out 1)" in result.output
    assert JANE not in result.output
    [event] = events(session)
    assert (event.source, event.action, event.actor) == ("mailto", "opted_out", "recipient")
    assert event.campaign == "dec-news"
    sealed = open_evidence(vault, event.evidence_sealed).value
    assert sealed["matched_by"] == "token"
    assert sealed["message_id"] == "<5E1C-77A0@example.net>"
    assert sealed["received_by"] == f"imap:127.0.0.1:{server.port}/INBOX"
    assert "unsubscribe you" not in str(sealed)  # the body is never stored
    assert decision(client, sender) == (False, "opted_out")
    assert server.messages("INBOX") == []
    assert subjects(server.messages("Processed")) == [f"unsubscribe {token}"]
    assert counted("opted_out") == before + 1


@pytest.mark.committed
def test_a_mail_naming_nobody_goes_to_the_unmatched_folder_and_records_nothing(
    cli_env, server, session
):
    server.deliver(stranger_mail())
    before = counted("ignored")
    result = cli_env.invoke(main, ["mailbox", "poll"])
    assert result.exit_code == 0, result.output
    assert "(ignored 1)" in result.output
    assert events(session) == []
    assert server.messages("INBOX") == []
    assert server.messages("Processed") == []
    assert subjects(server.messages("Unmatched")) == ["please take me off your list"]
    assert counted("ignored") == before + 1


@pytest.mark.committed
def test_polling_again_changes_nothing(cli_env, server, client, sender, session):
    mailto = mailto_of(mint(client, sender))
    server.deliver(apple_mail(mailto, sender=JANE))
    server.deliver(stranger_mail())
    assert cli_env.invoke(main, ["mailbox", "poll"]).exit_code == 0
    first = [(e.id, e.source) for e in events(session)]
    processed, unmatched = server.messages("Processed"), server.messages("Unmatched")

    again = cli_env.invoke(main, ["mailbox", "poll"])

    assert again.exit_code == 0, again.output
    assert "mailbox: 0 message(s)" in again.output
    assert [(e.id, e.source) for e in events(session)] == first == [(first[0][0], "mailto")]
    assert server.messages("Processed") == processed
    assert server.messages("Unmatched") == unmatched


@pytest.mark.committed
def test_the_command_without_a_mailbox_says_what_to_set(cli_env, monkeypatch):
    monkeypatch.delenv("UNSUBSCRIBE_IMAP_URL")
    result = cli_env.invoke(main, ["mailbox", "poll"])
    assert result.exit_code == 1
    assert "UNSUBSCRIBE_IMAP_URL is not set" in result.output


@pytest.mark.committed
def test_a_refused_log_in_fails_the_command_without_showing_the_password(
    cli_env, server, monkeypatch
):
    wrong = "wr0ng p@ss"
    monkeypatch.setenv("UNSUBSCRIBE_IMAP_URL", server.url(password=wrong))
    server.deliver(stranger_mail())
    result = cli_env.invoke(main, ["mailbox", "poll"])
    assert result.exit_code == 1
    assert "stopped: log-in refused" in result.output
    assert "p@ss" not in result.output
    assert "wr0ng" not in result.output
    assert len(server.messages("INBOX")) == 1  # still waiting


@pytest.mark.committed
@pytest.mark.slow
def test_the_loop_polls_until_sigterm_and_then_stops_cleanly(
    cli_env, server, client, sender, session
):
    environment = {**os.environ, "UNSUBSCRIBE_IMAP_INTERVAL": "1"}
    loop = subprocess.Popen(
        [str(Path(sys.executable).with_name("suppression")), "mailbox", "poll", "--loop"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        server.deliver(apple_mail(mailto_of(mint(client, sender)), sender=JANE))
        waited = 0.0
        while not server.messages("Processed") and waited < 60:
            time.sleep(0.2)
            waited += 0.2
        loop.send_signal(signal.SIGTERM)
        output, _ = loop.communicate(timeout=60)
    finally:
        if loop.poll() is None:
            loop.kill()
            loop.wait()
    assert loop.returncode == 0, output
    assert "mailbox poller started on imap:127.0.0.1" in output
    assert "(opted_out 1)" in output
    assert "mailbox poller stopped" in output
    assert len(server.messages("Processed")) == 1
    assert [event.source for event in events(session)] == ["mailto"]


@pytest.mark.committed
@pytest.mark.slow
def test_the_loop_without_a_mailbox_idles_until_sigterm(cli_env, monkeypatch):
    # The Procfile's optional line: a runner that starts every line stops them all
    # when one exits, so an unconfigured poller waits instead.
    monkeypatch.delenv("UNSUBSCRIBE_IMAP_URL")
    idle = subprocess.Popen(
        [str(Path(sys.executable).with_name("suppression")), "mailbox", "poll", "--loop"],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert idle.stdout is not None
        first = idle.stdout.readline()  # written once its signal handlers are in place
        idle.send_signal(signal.SIGTERM)
        rest, _ = idle.communicate(timeout=60)
    finally:
        if idle.poll() is None:
            idle.kill()
            idle.wait()
    assert "UNSUBSCRIBE_IMAP_URL is not set" in first
    assert "idle until stopped" in first
    assert idle.returncode == 0, first + rest


@pytest.mark.committed
def test_the_procfile_runs_the_poller_as_an_optional_process():
    procfile = Path(__file__).resolve().parents[2] / "Procfile"
    assert "mailbox: suppression mailbox poll --loop" in procfile.read_text().splitlines()


# The poller itself, in the test's transaction.


def test_a_failure_between_the_commit_and_the_move_is_read_again_harmlessly(
    app, settings, clock, server, client, sender, session, monkeypatch
):
    server.deliver(apple_mail(mailto_of(mint(client, sender)), sender=JANE))
    poller = poller_for(app, settings, clock, server)
    real_move = ImapFolder.move

    def connection_lost(folder: ImapFolder, uid: int, to: str) -> None:
        # The opt-out is committed; the connection dies before the move (a real
        # socket failure under imaplib, as a network cut or a killed server gives).
        folder.client.shutdown()
        real_move(folder, uid, to)

    monkeypatch.setattr(ImapFolder, "move", connection_lost)
    cut = poller.run_pass()
    assert cut.error is not None
    assert cut.error.startswith("moving a message to Processed failed")
    assert [event.source for event in events(session)] == ["mailto"]
    assert len(server.messages("INBOX")) == 1  # not moved: not lost

    monkeypatch.setattr(ImapFolder, "move", real_move)
    again = poller.run_pass()
    assert again.error is None
    assert dict(again.counts) == {"already_opted_out": 1}
    assert [event.source for event in events(session)] == ["mailto"]
    assert server.messages("INBOX") == []
    assert len(server.messages("Processed")) == 1


def test_the_api_and_the_poller_give_one_mail_the_same_answer(
    app, settings, clock, server, client, sender, make_key, session
):
    raw = apple_mail(mailto_of(mint(client, sender)), sender="jane.alias@example.net")
    response = client.post(
        "/v1/inbound/mail",
        data=raw,
        headers={**make_key("inbound"), "Content-Type": "message/rfc822"},
    )
    assert response.get_json()["outcome"] == "opted_out"
    server.deliver(raw)  # the same mail, read from the mailbox too
    report = poller_for(app, settings, clock, server).run_pass()
    assert dict(report.counts) == {"already_opted_out": 1}
    assert [event.source for event in events(session)] == ["mailto"]
    assert len(server.messages("Processed")) == 1


def test_what_is_no_mail_at_all_goes_to_the_unmatched_folder(app, settings, clock, server, session):
    server.deliver(b"\x00\x01 not a mail\r\n")
    report = poller_for(app, settings, clock, server).run_pass()
    assert dict(report.counts) == {"unreadable": 1}
    assert events(session) == []
    assert len(server.messages("Unmatched")) == 1
    assert server.messages("INBOX") == []


def test_an_authenticated_from_without_a_token_opts_out_everything(
    app, settings, clock, server, session
):
    message = EmailMessage()
    message["From"] = f"Jane <{JANE}>"
    message["To"] = MAILBOX
    message["Subject"] = "unsubscribe"
    message["Authentication-Results"] = (
        "mx.news.example.org; dkim=pass header.d=example.com; dmarc=pass header.from=example.com"
    )
    message.set_content("unsubscribe\n")
    server.deliver(message.as_bytes(policy=SMTP))
    report = poller_for(app, settings, clock, server).run_pass()
    assert dict(report.counts) == {"opted_out": 1}
    [event] = events(session)
    assert (event.source, event.purpose) == ("mailto", "all")
    assert len(server.messages("Processed")) == 1


def test_a_message_a_person_already_opened_is_still_read(
    app, settings, clock, server, client, sender, session
):
    server.deliver(apple_mail(mailto_of(mint(client, sender)), sender=JANE))
    with server.client() as person:
        person.select('"INBOX"')
        person.uid("STORE", "1:*", "+FLAGS", r"(\Seen)")
    report = poller_for(app, settings, clock, server).run_pass()
    assert dict(report.counts) == {"opted_out": 1}
    assert [event.source for event in events(session)] == ["mailto"]


@pytest.mark.parametrize(("mode", "move"), [("plain", True), ("starttls", False), ("tls", False)])
def test_every_scheme_and_a_server_without_move_reach_the_folders(
    app, settings, clock, client, sender, session, tmp_path, mode, move
):
    (tmp_path / mode).mkdir()
    with imap_server(mode, tmp_path / mode, move=move) as other:
        other.deliver(apple_mail(mailto_of(mint(client, sender)), sender=JANE))
        other.deliver(stranger_mail())
        poller = poller_for(app, settings, clock, other)
        with poller.mailbox.open() as folder:
            assert ("MOVE" in folder.capabilities) is move
        report = poller.run_pass()
        assert report.error is None
        assert dict(report.counts) == {"opted_out": 1, "ignored": 1}
        assert other.messages("INBOX") == []
        assert len(other.messages("Processed")) == 1
        assert len(other.messages("Unmatched")) == 1
    assert [event.source for event in events(session)] == ["mailto"]


def test_a_server_certificate_of_an_unknown_ca_is_refused(app, settings, clock, server):
    # The test's server, trusted against the system's roots: its CA is not one.
    report = poller_for(app, settings, clock, replace(server, ca_file=None)).run_pass()
    assert report.error is not None
    assert report.error.startswith("TLS failed")
    assert len(server.messages("INBOX")) == 0


def test_a_server_that_does_not_answer_leaves_the_pass_with_a_reason(app, settings, clock):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]  # bound, not listening: connections are refused
        nobody = ImapServer(port, "plain", None)
        report = poller_for(app, settings, clock, nobody).run_pass()
    assert report.error is not None
    assert report.error.startswith("connecting failed: ")
    assert report.messages == 0
