"""One subject's whole history of events, for the staff pages and the lookup."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.store.models import ConsentEvent


def subject_events(session: Session, subject_id: int) -> list[ConsentEvent]:
    """Every event of the subject, newest first (by when it happened, then as stored)."""
    return list(
        session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.subject_id == subject_id)
            .order_by(ConsentEvent.occurred_at.desc(), ConsentEvent.id.desc())
        )
    )
