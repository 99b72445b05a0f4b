"""Leasing outbox rows to a worker.

`claim` marks up to N rows as this worker's for a lease, in one statement
(`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers). A worker
that dies leaves rows whose lease runs out: another worker claims them again.
On PostgreSQL sooner: a claiming connection holds an advisory lock standing for
its worker, the server drops it with a dead worker's connections, and the next
worker to look (`release_dead_claims`, at its start) puts those rows back.

Services flush, never commit: the caller's edge commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from suppression.connectors.base import Operation
from suppression.services.destinations.rows import AwaitingRow, ClaimedRow
from suppression.store.advisory_locks import held_advisory_keys, hold_liveness, liveness_key
from suppression.store.dialects import execute_dml, id_filters
from suppression.store.models.destinations import OutboxRow


def claim(
    session: Session,
    destination: str,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
) -> list[ClaimedRow]:
    """Take up to `limit` due rows for this worker until the lease runs out.

    Skips rows another worker holds (lease not expired, or locked right now on
    PostgreSQL), rows awaiting an accepted request's outcome, and rows whose
    subject is in flight for this destination (claimed, or awaiting such an
    outcome), so one subject's pushes to one destination never overlap.

    Three statements, each cheap whatever the statistics say: the due
    rows in queue order (the queue index, locked with SKIP LOCKED), which of
    their subjects has a row in flight (the subject index), and the update by
    primary key. One statement with the in-flight test as an anti-join was
    planned as a scan of the whole queue per candidate when the statistics
    counted no claimed row (10 s a claim at 60,000 rows).
    """
    hold_liveness(session, worker)
    due = session.execute(
        select(OutboxRow.id, OutboxRow.subject_id)
        .where(*_due(destination, now, awaiting=False))
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    if not due:
        return []
    # A due row's own lease has run out, so a row in flight is always another one.
    in_flight: set[int] = set()
    for subjects in id_filters(session, OutboxRow.subject_id, sorted({r.subject_id for r in due})):
        in_flight.update(
            session.scalars(
                select(OutboxRow.subject_id).where(
                    subjects,
                    OutboxRow.destination == destination,
                    or_(
                        OutboxRow.claimed_until >= now,
                        (OutboxRow.request_id.is_not(None) & OutboxRow.failed_at.is_(None)),
                    ),
                )
            )
        )
    chosen = [row.id for row in due if row.subject_id not in in_flight]
    until = now + timedelta(seconds=lease_seconds)
    rows = [
        ClaimedRow(*row)
        for row in _lease(
            session, chosen, worker, until, OutboxRow.id, OutboxRow.subject_id, OutboxRow.attempts
        )
    ]
    return sorted(rows, key=lambda row: row.id)


def renew(session: Session, worker: str, row_ids: Sequence[int], until: datetime) -> int:
    """Keep this worker's rows until `until` (a push about to wait for the platform
    would outlive the lease); answers how many it still held."""
    renewed = 0
    for ids in id_filters(session, OutboxRow.id, sorted(row_ids)):
        result = execute_dml(
            session,
            update(OutboxRow)
            .where(ids, OutboxRow.claimed_by == worker)
            .values(claimed_until=until)
            .execution_options(synchronize_session=False),
        )
        renewed += int(result.rowcount or 0)
    return renewed


def _due(destination: str, now: datetime, awaiting: bool) -> tuple[Any, ...]:
    """A destination's unparked rows whose backoff and lease have run out: those
    waiting to be pushed, or (`awaiting`) those waiting on an accepted request."""
    return (
        OutboxRow.destination == destination,
        OutboxRow.failed_at.is_(None),
        OutboxRow.request_id.is_not(None) if awaiting else OutboxRow.request_id.is_(None),
        or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now),
        or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
    )


def _lease(
    session: Session, ids: list[int], worker: str, until: datetime, *columns: Any
) -> list[Any]:
    """Give the rows to this worker until `until`; their `columns` as leased."""
    leased: list[Any] = []
    for chosen in id_filters(session, OutboxRow.id, ids):
        leased += session.execute(
            update(OutboxRow)
            .where(chosen)
            .values(claimed_by=worker, claimed_until=until)
            .returning(*columns)
            .execution_options(synchronize_session=False)
        ).all()
    return leased


def _awaiting(
    id: int,
    subject_id: int,
    attempts: int,
    request_id: str | None,
    operation: str | None,
    reason: str | None,
    requested_at: datetime | None,
) -> AwaitingRow:
    # settle_accepted writes the request's columns together, and an awaiting row
    # is one whose request_id is set.
    if request_id is None or operation is None or requested_at is None:
        raise ValueError(f"outbox row {id} awaits a status read without its request")
    return AwaitingRow(
        id, subject_id, attempts, request_id, Operation(operation), reason, requested_at
    )


def claim_awaiting(
    session: Session,
    destination: str,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
) -> list[AwaitingRow]:
    """Take up to `limit` rows whose accepted request is due for a status read,
    for this worker until the lease runs out (so two workers never read and
    settle the same request at once)."""
    hold_liveness(session, worker)
    due = session.scalars(
        select(OutboxRow.id)
        .where(*_due(destination, now, awaiting=True))
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    until = now + timedelta(seconds=lease_seconds)
    rows = [
        _awaiting(*row)
        for row in _lease(
            session,
            list(due),
            worker,
            until,
            OutboxRow.id,
            OutboxRow.subject_id,
            OutboxRow.attempts,
            OutboxRow.request_id,
            OutboxRow.request_operation,
            OutboxRow.request_reason,
            OutboxRow.requested_at,
        )
    ]
    return sorted(rows, key=lambda row: row.id)


def release_dead_claims(session: Session, destination: str, now: datetime) -> int:
    """PostgreSQL: put back the rows of workers that no longer hold their
    liveness lock (see `hold_liveness`), without waiting for their lease to run
    out; answers how many. SQLite has no such lock: rows wait for the lease.

    A worker whose every claiming connection closed while it lives (the pool
    recycled them all mid-batch) would lose its rows to another worker early:
    the subject is pushed twice, which the platforms take as a no-op, and both
    answers are recorded. Nothing is lost either way."""
    held = held_advisory_keys(session)
    if held is None:
        return 0
    in_flight = OutboxRow.destination == destination, OutboxRow.claimed_until >= now
    claimants = session.scalars(select(OutboxRow.claimed_by).where(*in_flight).distinct()).all()
    if not claimants:
        return 0
    dead = [c for c in claimants if c is not None and liveness_key(c) not in held]
    if not dead:
        return 0
    result = execute_dml(
        session,
        update(OutboxRow)
        .where(*in_flight, OutboxRow.claimed_by.in_(dead))
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False),
    )
    return int(result.rowcount or 0)
