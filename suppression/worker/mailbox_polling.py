"""Reading the unsubscribe mailbox: `suppression mailbox poll [--loop]`.

Each pass logs in (connectors/imap.py), and for every message waiting in the
folder: fetches it, hands it to services/inbound/mail_unsubscribes.py (the code
`POST /v1/inbound/mail` runs), commits, and only then moves it, to the processed
folder when it named someone, to the unmatched folder (for a person to read)
when it named nobody or was no mail at all. Killed at any point, nothing is lost:
a message is moved only after its opt-out is committed, and one read again (the
move never happened) is a repeat, which records nothing.

No transaction is open while the server is asked anything. Logs and metrics
carry counts and outcomes, never an address.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import Settings
from suppression.connectors.imap import ImapFolder, ImapMailbox, MailboxError
from suppression.domain.inbound_mail import UnreadableMail, read_mail
from suppression.domain.policy import EventAction
from suppression.domain.tokens import LinkTokens
from suppression.domain.vault import AddressVault
from suppression.observability import metrics
from suppression.observability.redaction import redact
from suppression.services.inbound.mail_unsubscribes import (
    MailAnswer,
    MailOutcome,
    MailReader,
    opt_out_by_mail,
)
from suppression.services.links.unsubscribes import SOURCE_MAILTO
from suppression.store.schema import utcnow
from suppression.worker.one_click_folding import alarm_rule, count

logger = logging.getLogger(__name__)


class MessageOutcome(StrEnum):
    """What became of one message: the service's answer, or `unreadable` for
    what is no RFC 5322 message."""

    OPTED_OUT = MailOutcome.OPTED_OUT.value
    ALREADY_OPTED_OUT = MailOutcome.ALREADY_OPTED_OUT.value
    IGNORED = MailOutcome.IGNORED.value
    UNREADABLE = "unreadable"


def count_answer(answer: MailAnswer) -> None:
    """The metrics of one committed mail: what it folded and what it recorded."""
    if answer.folded is not None:
        count(answer.folded)
    if answer.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    if answer.outcome == MailOutcome.OPTED_OUT:
        metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, SOURCE_MAILTO).inc()


@dataclass
class PollReport:
    counts: Counter[str] = field(default_factory=Counter)  # MessageOutcome -> messages
    error: str | None = None  # why the pass stopped early (the rest waits for the next)

    @property
    def messages(self) -> int:
        return sum(self.counts.values())

    def line(self) -> str:
        done = ", ".join(f"{outcome} {n}" for outcome, n in sorted(self.counts.items()))
        text = f"mailbox: {self.messages} message(s)" + (f" ({done})" if done else "")
        return text + (f"; stopped: {self.error}" if self.error else "")


class MailboxPoller:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: AddressVault,
        settings: Settings,
        tokens: LinkTokens | None,
        clock: Callable[[], datetime] = utcnow,
        mailbox: ImapMailbox | None = None,
    ):
        self.sessions = sessions
        self.vault = vault
        self.settings = settings
        self.clock = clock
        self.mailbox = mailbox or settings.mailbox.mailbox()
        self.reader = MailReader(tokens, received_by=self.mailbox.name)
        self.rule = alarm_rule(settings.links)

    def run_pass(self, stop: threading.Event | None = None) -> PollReport:
        """Every message waiting now, one at a time (until `stop` is set). A
        mailbox failure ends the pass with the report saying so; the messages not
        moved stay for the next pass."""
        report = PollReport()
        try:
            with self.mailbox.open() as folder:
                for uid in folder.uids():
                    if stop is not None and stop.is_set():
                        break
                    outcome = self._one(folder, uid)
                    if outcome is not None:
                        report.counts[outcome] += 1
                        metrics.MAILBOX_MESSAGES.labels(outcome).inc()
        except MailboxError as exc:
            # The server's own words may quote the account's address.
            report.error = redact(exc.message)
            metrics.MAILBOX_FAILURES.inc()
            logger.warning("mailbox pass stopped: %s", report.error)
        if report.messages:
            logger.info("%s", report.line())
        return report

    def run_forever(self, stop: threading.Event) -> None:
        """Pass after pass, UNSUBSCRIBE_IMAP_INTERVAL apart, until `stop` is set."""
        while not stop.is_set():
            try:
                self.run_pass(stop)
            except Exception:
                # The database, say: the message in hand was not moved; it waits.
                logger.exception("mailbox pass failed; trying again after the interval")
            stop.wait(self.settings.mailbox.interval_seconds)

    def _one(self, folder: ImapFolder, uid: int) -> MessageOutcome | None:
        raw = folder.fetch(uid)
        if raw is None:
            return None  # moved or expunged by another client meanwhile
        folders = self.settings.mailbox
        try:
            mail = read_mail(raw)
        except UnreadableMail:
            folder.move(uid, folders.unmatched_folder)
            return MessageOutcome.UNREADABLE
        with self.sessions() as session:
            answer = opt_out_by_mail(
                session, self.vault, self.settings, self.rule, mail, self.reader, self.clock()
            )
            session.commit()
        count_answer(answer)
        # Only now, with the opt-out committed, may the message leave the folder.
        folder.move(
            uid, folders.processed_folder if answer.named_someone else folders.unmatched_folder
        )
        return MessageOutcome(answer.outcome.value)
