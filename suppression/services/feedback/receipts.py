"""Which platform event ids and signing nonces were received (FeedbackReceipt).

A claim is one INSERT that does nothing on a conflict: of two requests carrying
the same id, the second waits for the first's transaction and then finds the row
(PostgreSQL), or runs after it (SQLite), so one of them acts. The claim commits
with what the event recorded: an event whose recording failed is not claimed,
and the platform's retry does it.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.orm import Session

from suppression.store.dialects import insert
from suppression.store.models import FeedbackReceipt

# Platforms retry for at most three days (SendGrid 72 hours); a week is kept.
KEPT_FOR = timedelta(days=7)


def _claim(session: Session, platform: str, key: str, now: datetime) -> bool:
    statement = (
        insert(session, FeedbackReceipt)
        .values(
            platform=platform,
            key_digest=hashlib.sha256(key.encode()).digest(),
            received_at=now,
        )
        .on_conflict_do_nothing(index_elements=["platform", "key_digest"])
        # What was inserted, rather than a rowcount (-1 from some drivers).
        .returning(FeedbackReceipt.platform)
    )
    return session.execute(statement).first() is not None


def claim_event(session: Session, platform: str, event_id: str, now: datetime) -> bool:
    """True the first time this platform's event id is claimed; False for a repeat."""
    return _claim(session, platform, f"event:{event_id}", now)


def claim_nonce(session: Session, platform: str, nonce: str, now: datetime) -> bool:
    """True the first time a signing nonce (Mailgun's token) is seen; False for a replay."""
    return _claim(session, platform, f"nonce:{nonce}", now)


def forget_old_receipts(session: Session, now: datetime) -> int:
    """Delete receipts older than KEPT_FOR (a retry that late is refused as stale anyway)."""
    statement = delete(FeedbackReceipt).where(FeedbackReceipt.received_at < now - KEPT_FOR)
    return session.execute(statement).rowcount  # type: ignore[attr-defined]
