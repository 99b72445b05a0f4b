"""Read models of the outbox: what waits for a destination, what a subject still
needs confirmed, and what each destination answered about a subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.destinations import PushOutcome
from suppression.store.models.destinations import (
    Destination,
    DestinationPush,
    DestinationSubject,
    OutboxRow,
)


def waiting_rows(session: Session, destination: str) -> int:
    """Rows of a destination not parked: due, in flight, or waiting to retry."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.destination == destination, OutboxRow.failed_at.is_(None))
        )
        or 0
    )


def pending_removals(session: Session, subject_id: int) -> int:
    """Rows for this subject not yet confirmed by an enabled destination (waiting,
    in flight or parked). Erasure drops the address only when this is 0."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .join(Destination, Destination.name == OutboxRow.destination)
            .where(OutboxRow.subject_id == subject_id, Destination.enabled.is_(True))
        )
        or 0
    )


@dataclass(frozen=True)
class PushRecord:
    destination: str
    operation: str
    reason: str | None
    outcome: PushOutcome
    pushed_at: datetime


def pushes_for(session: Session, subject_id: int) -> list[PushRecord]:
    """Every push a destination answered for this subject, oldest first (export)."""
    rows = session.scalars(
        select(DestinationPush)
        .where(DestinationPush.subject_id == subject_id)
        .order_by(DestinationPush.pushed_at, DestinationPush.id)
    )
    return [
        PushRecord(
            row.destination, row.operation, row.reason, PushOutcome(row.outcome), row.pushed_at
        )
        for row in rows
    ]


@dataclass(frozen=True)
class SubjectDestinationStatus:
    """Where one subject stands with one destination."""

    destination: str
    pending: int
    failed: int
    last_error: str | None
    suppressed: bool | None  # None: never pushed
    reason: str | None
    confirmed_at: datetime | None

    @property
    def settled(self) -> bool:
        return self.pending == 0 and self.failed == 0


def subject_destination_status(session: Session, subject_id: int) -> list[SubjectDestinationStatus]:
    """Per destination: rows waiting or parked, and what was last confirmed."""
    queued: dict[str, list[OutboxRow]] = {}
    for row in session.scalars(
        select(OutboxRow).where(OutboxRow.subject_id == subject_id).order_by(OutboxRow.id)
    ):
        queued.setdefault(row.destination, []).append(row)
    held = {
        row.destination: row
        for row in session.scalars(
            select(DestinationSubject).where(DestinationSubject.subject_id == subject_id)
        )
    }
    statuses = []
    for name in sorted(set(queued) | set(held)):
        rows = queued.get(name, [])
        state = held.get(name)
        errors = [row.last_error for row in rows if row.last_error]
        statuses.append(
            SubjectDestinationStatus(
                destination=name,
                pending=sum(1 for row in rows if row.failed_at is None),
                failed=sum(1 for row in rows if row.failed_at is not None),
                last_error=errors[-1] if errors else None,
                suppressed=state.suppressed if state else None,
                reason=state.reason if state else None,
                confirmed_at=state.confirmed_at if state else None,
            )
        )
    return statuses
