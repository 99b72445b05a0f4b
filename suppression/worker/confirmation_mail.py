"""Sending double opt-in confirmation mails: claim, compose, hand to the relay, settle.

The web process tries a request's mail at once, after the request's transaction
committed (the relay is never called inside a transaction); whatever is not sent
then is retried by every pass of `suppression sync` (the Procfile worker) with
backoff, until it is sent, refused for good, or its link would arrive expired.
The address is opened in memory only to address the mail; logs and stored errors
name the request id, never the address.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import Settings
from suppression.connectors.smtp import MailError, MailFailureKind, SmtpRelay
from suppression.domain.purposes import purpose_label
from suppression.domain.sealing import SealError
from suppression.domain.tokens import LinkTokens
from suppression.domain.vault import AddressVault
from suppression.observability import metrics
from suppression.services.links.confirmation_outbox import (
    ClaimedMail,
    claim_mails,
    give_up_expired,
    mail_failed,
    mail_sent,
)
from suppression.services.links.opt_in_requests import purge_expired_requests
from suppression.store.schema import utcnow

logger = logging.getLogger(__name__)

CONFIRM_PATH = "/confirm/"
BATCH = 50


def compose_confirmation(
    to: str,
    sender: str,
    link: str,
    purposes: Sequence[str],
    expires_at: datetime,
    message_domain: str,
    now: datetime,
) -> EmailMessage:
    """The mail: what was asked for, the link, how long it works, and what happens
    if it was not the reader who asked."""
    wanted = "\n".join(f"  - {purpose_label(purpose)}" for purpose in purposes)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = "Please confirm: you asked to hear from us again"
    message["Date"] = format_datetime(now)
    message["Message-ID"] = make_msgid(domain=message_domain)
    # A confirmation is no marketing mail: no List-Unsubscribe, and auto-replies stay away.
    message["Auto-Submitted"] = "auto-generated"
    body = (
        "Someone (we hope you) asked on our email preferences page for this address\n"
        f"to receive:\n\n{wanted}\n\n"
        "To confirm, open this link and press the button on the page:\n\n"
        f"  {link}\n\n"
        f"The link works until {expires_at:%d %B %Y, %H:%M} UTC. Nothing is switched on\n"
        "until you confirm. If it was not you, ignore this mail: nothing changes.\n"
    )
    # 7bit keeps the link whole on the wire: quoted-printable would cut its long line
    # with soft breaks, which a reader of the raw text would copy with the link.
    message.set_content(body, cte="7bit" if body.isascii() else "quoted-printable")
    return message


@dataclass
class MailReport:
    sent: int = 0
    retrying: int = 0
    given_up: int = 0


class ConfirmationMailer:
    """Build once per process (web or worker) when SMTP_URL is set."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: AddressVault,
        settings: Settings,
        relay: SmtpRelay | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
    ):
        mail = settings.mail
        if not mail.enabled or mail.smtp_url is None or mail.mail_from is None:
            raise ValueError("confirmation mail needs SMTP_URL and MAIL_FROM")
        host = urlsplit(settings.public_base_url).hostname or "localhost"
        self.relay = relay or SmtpRelay.from_url(
            mail.smtp_url,
            timeout=mail.smtp_timeout_seconds,
            ca_file=mail.smtp_ca_file,
            helo_name=host,
        )
        self.sessions = sessions
        self.vault = vault
        self.sender = mail.mail_from
        self.message_domain = host
        self.confirm_url = settings.public_base_url + CONFIRM_PATH
        self.validity = timedelta(hours=mail.confirm_link_hours)
        self.tokens = LinkTokens(settings.keys.token_keys)
        self.clock = clock
        self.rng = rng or random.Random()

    def deliver(self, request_id: int) -> bool:
        """Send one request's mail now (unless another sender holds it); True if sent."""
        with self.sessions() as session:
            claimed = claim_mails(session, self.clock(), limit=1, request_id=request_id)
            session.commit()
        return self._send(claimed).sent == 1

    def drain(self) -> MailReport:
        """Send every due mail, batch by batch; give up mails whose link expired and
        drop requests nobody can confirm any more."""
        report = MailReport()
        with self.sessions() as session:
            now = self.clock()
            report.given_up += give_up_expired(session, now, self.validity)
            purge_expired_requests(session, now, self.validity)
            session.commit()
        while True:
            with self.sessions() as session:
                claimed = claim_mails(session, self.clock(), limit=BATCH)
                session.commit()
            if not claimed:
                break
            batch = self._send(claimed)
            report.sent += batch.sent
            report.retrying += batch.retrying
            report.given_up += batch.given_up
            if len(claimed) < BATCH:
                break
        if report.sent or report.retrying or report.given_up:
            logger.info(
                "confirmation mails: %d sent, %d to retry, %d given up",
                report.sent,
                report.retrying,
                report.given_up,
            )
        return report

    def _send(self, claimed: list[ClaimedMail]) -> MailReport:
        report = MailReport()
        for mail in claimed:
            try:
                message = self._compose(mail)
                self.relay.send(message)
            except MailError as error:
                given_up = self._settle_failed(mail.id, error.message, error.kind)
                report.given_up += given_up
                report.retrying += not given_up
                continue
            except SealError:
                self._settle_failed(
                    mail.id, "the address cannot be opened", MailFailureKind.PERMANENT
                )
                report.given_up += 1
                continue
            with self.sessions() as session:
                mail_sent(session, mail.id, self.clock())
                session.commit()
            metrics.CONFIRMATION_MAILS.labels("sent").inc()
            logger.info("confirmation mail for opt-in request %d sent", mail.id)
            report.sent += 1
        return report

    def _compose(self, mail: ClaimedMail) -> EmailMessage:
        address = self.vault.open(mail.email_sealed)
        token = self.tokens.mint_confirmation(address, mail.purposes, mail.id, mail.requested_at)
        return compose_confirmation(
            address,
            self.sender,
            self.confirm_url + token,
            mail.purposes,
            mail.requested_at + self.validity,
            self.message_domain,
            self.clock(),
        )

    def _settle_failed(self, request_id: int, error: str, kind: MailFailureKind) -> bool:
        with self.sessions() as session:
            given_up = mail_failed(
                session,
                request_id,
                self.clock(),
                error,
                permanent=kind == MailFailureKind.PERMANENT,
                rng=self.rng,
            )
            session.commit()
        outcome = "given_up" if given_up else "retrying"
        metrics.CONFIRMATION_MAILS.labels(outcome).inc()
        logger.warning(
            "confirmation mail for opt-in request %d not sent (%s): %s", request_id, outcome, error
        )
        return given_up
