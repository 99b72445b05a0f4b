"""The confirmation mails' outbox: the `OptInRequest` rows whose mail is not sent.

A row is claimed under a lease before its mail is handed to the relay (so two
senders never send it at once, and one that dies leaves it to the next after the
lease), then settled: sent, or retried after an exponential backoff with jitter,
or given up (a permanent refusal, too many attempts, or a link that expired).
These flush and never commit; the sender commits around the network call.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from suppression.store.dialects import claimed
from suppression.store.models import OptInRequest

LEASE = timedelta(minutes=2)
BACKOFF = timedelta(seconds=30)
BACKOFF_MAX = timedelta(hours=1)
MAX_ATTEMPTS = 12  # about nine hours of retries at most; the link lasts longer


@dataclass(frozen=True)
class ClaimedMail:
    id: int
    email_sealed: bytes
    purposes: tuple[str, ...]
    requested_at: datetime


def _due(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        OptInRequest.mail_sent_at.is_(None),
        OptInRequest.mail_failed_at.is_(None),
        or_(OptInRequest.mail_available_at.is_(None), OptInRequest.mail_available_at <= now),
        or_(OptInRequest.mail_claimed_until.is_(None), OptInRequest.mail_claimed_until < now),
    )


def claim_mails(
    session: Session, now: datetime, limit: int = 50, request_id: int | None = None
) -> list[ClaimedMail]:
    """Due mails (or the one of `request_id`, if due), leased to the caller."""
    query = select(OptInRequest).where(*_due(now)).order_by(OptInRequest.id).limit(limit)
    if request_id is not None:
        query = query.where(OptInRequest.id == request_id)
    claims = []
    for row in session.scalars(claimed(session, query)):
        row.mail_claimed_until = now + LEASE
        claims.append(
            ClaimedMail(row.id, row.email_sealed, tuple(row.purposes.split(",")), row.requested_at)
        )
    session.flush()
    return claims


def mail_sent(session: Session, request_id: int, now: datetime) -> None:
    row = session.get(OptInRequest, request_id)
    if row is not None:
        row.mail_sent_at = now
        row.mail_claimed_until = None
        row.mail_error = None
        row.mail_attempts += 1
        session.flush()


def mail_failed(
    session: Session,
    request_id: int,
    now: datetime,
    error: str,
    permanent: bool,
    rng: random.Random | None = None,
) -> bool:
    """Record a failed attempt; True when the mail is given up."""
    row = session.get(OptInRequest, request_id)
    if row is None:
        return True
    row.mail_attempts += 1
    row.mail_claimed_until = None
    row.mail_error = error[:200]
    if permanent or row.mail_attempts >= MAX_ATTEMPTS:
        row.mail_failed_at = now
    else:
        wait = min(BACKOFF * 2 ** (row.mail_attempts - 1), BACKOFF_MAX)
        jitter = (rng or random).uniform(0.8, 1.2)
        row.mail_available_at = now + wait * jitter
    session.flush()
    return row.mail_failed_at is not None


def give_up_expired(session: Session, now: datetime, link_validity: timedelta) -> int:
    """Unsent mails whose link would arrive expired are given up."""
    rows = session.scalars(
        select(OptInRequest).where(
            OptInRequest.mail_sent_at.is_(None),
            OptInRequest.mail_failed_at.is_(None),
            OptInRequest.requested_at < now - link_validity,
        )
    ).all()
    for row in rows:
        row.mail_failed_at = now
        row.mail_error = "the link expired before the mail could be sent"
    session.flush()
    return len(rows)


def waiting_mails(session: Session) -> int:
    """Mails neither sent nor given up (for the status page and metrics)."""
    return (
        session.scalar(
            select(func.count()).where(
                OptInRequest.mail_sent_at.is_(None), OptInRequest.mail_failed_at.is_(None)
            )
        )
        or 0
    )
