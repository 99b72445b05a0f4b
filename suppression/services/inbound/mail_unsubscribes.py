"""One unsubscribe mail (domain/inbound_mail.py read it) becomes an opt-out.

The API view (`POST /v1/inbound/mail`) and the mailbox poller (worker/mailbox_polling.py)
both call `opt_out_by_mail`, so a mail gets the same answer however it arrives. The
recipient is named by the link token the mailto carried, or, without a valid one, by
the `From` address when the receiving server's Authentication-Results show a DKIM or
DMARC pass for its domain. The opt-out goes the way the unsubscribe page's does
(services/links/unsubscribes.py), with source `mailto`: a repeat records nothing, so
reading a mail twice (a poller killed between its commit and its move) is harmless.

Evidence is the Message-ID, the Date and the Authentication-Results; the body was
searched for a token and dropped, and is never stored. This flushes, never commits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.orm import Session

from suppression.config.errors import ConfigError
from suppression.config.settings import Settings
from suppression.domain.addresses import canonicalise
from suppression.domain.inbound_mail import InboundMail
from suppression.domain.policy import ALL_PURPOSES
from suppression.domain.text import storable
from suppression.domain.tokens import LinkClaims, LinkKind, LinkTokens, TokenError
from suppression.domain.vault import AddressVault
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.intake import FoldOutcome, fold_intake, has_pending
from suppression.services.consents.recording import EventContext
from suppression.services.links.unsubscribes import (
    ACTOR,
    SOURCE_MAILTO,
    link_purpose,
    unsubscribe,
)
from suppression.store.models import UnsubscribeAlarm

# Tokens that unsubscribe: the header's (the mailto's), and the preference token.
UNSUBSCRIBING_KINDS = (LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES)


class MailOutcome(StrEnum):
    OPTED_OUT = "opted_out"
    ALREADY_OPTED_OUT = "already_opted_out"
    IGNORED = "ignored"  # nobody is named: nothing recorded


@dataclass(frozen=True)
class MailAnswer:
    outcome: MailOutcome
    reason: str  # why, in words (never the address)
    matched_by: str | None  # "token", "dkim" or "dmarc"; None when nobody was named
    folded: FoldOutcome | None = None  # the person's pending one-clicks, folded first
    alarm: UnsubscribeAlarm | None = None  # a mass-unsubscribe alarm this one raised

    @property
    def named_someone(self) -> bool:
        return self.outcome != MailOutcome.IGNORED


@dataclass(frozen=True)
class MailReader:
    """Who reads the mail and with what: the token codec (None while TOKEN_KEYS
    holds no key) and the name put in the evidence as `received_by`."""

    tokens: LinkTokens | None
    received_by: str


def opt_out_by_mail(
    session: Session,
    vault: AddressVault,
    settings: Settings,
    rule: AlarmRule,
    mail: InboundMail,
    reader: MailReader,
    now: datetime,
) -> MailAnswer:
    """Opt out whoever the mail names, or record nothing and say why."""
    claims, refusal = _claims(mail.tokens, reader.tokens, settings, now)
    if claims is not None:
        ctx = _context(mail, "token", claims.campaign, _link_evidence(claims), reader, now)
        return _record(session, vault, settings, rule, claims.address, claims.purpose, ctx, "token")
    address = canonicalise(mail.sender) if mail.sender else None
    if address is None or mail.authenticated_by is None:
        unauthenticated = (
            "the From address is not authenticated (no DMARC or DKIM pass for its domain)"
            if address
            else "there is no single valid From address"
        )
        return MailAnswer(MailOutcome.IGNORED, f"{refusal}; {unauthenticated}", None)
    matched_by = mail.authenticated_by
    ctx = _context(mail, matched_by, None, {}, reader, now)
    return _record(session, vault, settings, rule, address, ALL_PURPOSES, ctx, matched_by)


def _claims(
    candidates: tuple[str, ...], tokens: LinkTokens | None, settings: Settings, now: datetime
) -> tuple[LinkClaims | None, str]:
    """The first token that opens an unsubscribe, or None and why none did."""
    refusal = "the mail carries no unsubscribe token"
    validity = timedelta(days=settings.links.validity_days)
    for token in candidates:
        if tokens is None:
            raise ConfigError("TOKEN_KEYS holds no key: unsubscribe links cannot work")
        try:
            claims = tokens.read(token, now, validity)
        except TokenError as error:
            refusal = f"its token is not valid ({error.problem.value})"
            continue
        if claims.kind in UNSUBSCRIBING_KINDS:
            return claims, ""
        refusal = "its token does not unsubscribe"
    return None, refusal


def _link_evidence(claims: LinkClaims) -> dict[str, Any]:
    return {
        "link_kind": claims.kind.name.lower(),
        "link_issued_at": claims.issued_at.isoformat().replace("+00:00", "Z"),
        "link_purpose": claims.purpose,
    }


def _context(
    mail: InboundMail,
    matched_by: str,
    campaign: str | None,
    link: dict[str, Any],
    reader: MailReader,
    now: datetime,
) -> EventContext:
    headers = {
        "message_id": mail.message_id,
        "date": mail.date,
        "authentication_results": mail.authentication_results,
    }
    evidence = {
        **link,
        "matched_by": matched_by,
        "received_by": reader.received_by,
        **{name: storable(value) for name, value in headers.items() if value},
    }
    return EventContext(
        actor=ACTOR,
        source=SOURCE_MAILTO,
        occurred_at=now,
        recorded_at=now,
        # The caller is the mailbox's reader, not the person: no IP or agent of theirs.
        campaign=storable(campaign) if campaign else None,
        evidence=evidence,
    )


def _record(
    session: Session,
    vault: AddressVault,
    settings: Settings,
    rule: AlarmRule,
    address: str,
    purpose: str,
    ctx: EventContext,
    matched_by: str,
) -> MailAnswer:
    # The person's pending one-clicks first: a repeat of one of them records nothing.
    index = vault.index(address)
    folded = (
        fold_intake(session, vault, settings.policy, rule, index=index)
        if has_pending(session, index)
        else None
    )
    outcome = unsubscribe(session, vault, settings.policy, address, purpose, ctx, rule)
    if not outcome.recorded:
        reason = "the recipient is opted out already"
        return MailAnswer(MailOutcome.ALREADY_OPTED_OUT, reason, matched_by, folded, outcome.alarm)
    reason = f"opted out of {link_purpose(purpose, settings.policy)}"
    return MailAnswer(MailOutcome.OPTED_OUT, reason, matched_by, folded, outcome.alarm)
