"""The destination outbox: written with the change, claimed under a lease,
settled after the platform answered.

- `enqueue_subject_change` runs inside the caller's transaction (the consent or
  block write), so a change that rolls back leaves no row, and a committed one
  always has its rows.
- `claim` marks up to N rows as this worker's for a lease, in one statement
  (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers). A worker
  that dies leaves rows whose lease runs out: another worker claims them again.
- `settle_done` / `settle_failed` record the platform's answer: a row is deleted
  only when the platform confirmed; a failure waits with exponential backoff and
  jitter, a 429 waits as long as asked, and after too many attempts the row is
  parked (failed_at) until an operator retries it.

Services flush, never commit: the caller's edge commits.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    Integer,
    bindparam,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    update,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy.orm import Session, aliased

from suppression.connectors.base import Failure, FailureKind
from suppression.connectors.settings import SyncSettings
from suppression.db import BigId, UTCDateTime, utcnow
from suppression.models.destinations import (
    Destination,
    DestinationPush,
    DestinationSubject,
    OutboxRow,
)
from suppression.services.dialects import insert

CONFIRMED = "confirmed"  # the platform confirmed the change
NOT_FOUND = "not_found"  # the platform holds no such address: nothing to change there
NO_ADDRESS = "no_address"  # the address was erased before it could be pushed
CHUNK = 2_000  # ids per IN (...) list


def _chunks(items: Sequence[int], size: int = CHUNK) -> Iterable[Sequence[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


_OUTBOX = OutboxRow.__table__
_REGISTRY = Destination.__table__
_WAITING_ROW = _OUTBOX.alias("waiting")
_SUBJECT = bindparam("subject_id", type_=BigId)
_AT = bindparam("at", type_=UTCDateTime())
# Built once: this runs inside every consent and block write.
_ENQUEUE = sa_insert(_OUTBOX).from_select(
    ["destination", "subject_id", "created_at", "attempts"],
    select(_REGISTRY.c.name, _SUBJECT, _AT, literal(0, type_=Integer())).where(
        _REGISTRY.c.enabled.is_(True),
        # Unless an unclaimed, unparked row for this subject already waits there.
        ~exists().where(
            _WAITING_ROW.c.destination == _REGISTRY.c.name,
            _WAITING_ROW.c.subject_id == _SUBJECT,
            _WAITING_ROW.c.claimed_by.is_(None),
            _WAITING_ROW.c.failed_at.is_(None),
        ),
    ),
)


def enqueue_subject_change(session: Session, subject_id: int, now: datetime | None = None) -> None:
    """Tell every enabled destination to look at this subject again.

    Call it in the transaction that changes the subject's state. Whether that
    means a removal is decided when the row is pushed, from the state then.
    """
    session.execute(_ENQUEUE, {"subject_id": subject_id, "at": now or utcnow()})


def enqueue_subject_changes(
    session: Session, subject_ids: Sequence[int], now: datetime | None = None
) -> int:
    """The bulk form (imports): rows for many subjects at every enabled destination."""
    names = session.scalars(select(Destination.name).where(Destination.enabled.is_(True)))
    at = now or utcnow()
    return sum(enqueue_subjects(session, name, subject_ids, at) for name in list(names))


def enqueue_removals(session: Session, subject_id: int, now: datetime | None = None) -> int:
    """Erasure's first phase (set erased_at first): queue the removal everywhere;
    answers how many destinations must still confirm (0: none is enabled)."""
    enqueue_subject_change(session, subject_id, now)
    return pending_removals(session, subject_id)


def enqueue_subjects(
    session: Session, destination: str, subject_ids: Sequence[int], now: datetime
) -> int:
    """Rows for many subjects of one destination (full reconcile); returns how many."""
    added = 0
    for chunk in _chunks(list(subject_ids)):
        waiting = set(
            session.scalars(
                select(OutboxRow.subject_id).where(
                    OutboxRow.destination == destination,
                    OutboxRow.subject_id.in_(chunk),
                    OutboxRow.claimed_by.is_(None),
                    OutboxRow.failed_at.is_(None),
                )
            )
        )
        values = [
            {"destination": destination, "subject_id": s, "created_at": now, "attempts": 0}
            for s in chunk
            if s not in waiting
        ]
        if values:
            session.execute(insert(session, OutboxRow), values)
            added += len(values)
    return added


def refresh_statistics(session: Session) -> None:
    """PostgreSQL: ANALYZE the outbox after a bulk enqueue (full reconcile).

    Its statistics are those of the table when last analysed, often empty: the
    planner then answers the waiting-row lookup of `enqueue_subjects` by scanning
    every queued row of the destination (the queue index) instead of probing the
    subject index, and a reconcile of N subjects costs O(N^2). Autovacuum catches
    up only after a minute or more; the reconcile must not wait for it.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE destination_outbox"))


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    subject_id: int
    attempts: int


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
    PostgreSQL) and rows whose subject is in flight for this destination, so
    one subject's pushes to one destination never overlap.
    """
    in_flight = aliased(OutboxRow)
    candidates = (
        select(OutboxRow.id)
        .where(
            OutboxRow.destination == destination,
            OutboxRow.failed_at.is_(None),
            or_(OutboxRow.available_at.is_(None), OutboxRow.available_at <= now),
            or_(OutboxRow.claimed_until.is_(None), OutboxRow.claimed_until < now),
            ~exists().where(
                in_flight.destination == OutboxRow.destination,
                in_flight.subject_id == OutboxRow.subject_id,
                in_flight.claimed_until >= now,
                in_flight.id != OutboxRow.id,
            ),
        )
        .order_by(OutboxRow.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    statement = (
        update(OutboxRow)
        .where(OutboxRow.id.in_(candidates.scalar_subquery()))
        .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease_seconds))
        .returning(OutboxRow.id, OutboxRow.subject_id, OutboxRow.attempts)
        .execution_options(synchronize_session=False)
    )
    rows = [ClaimedRow(*row) for row in session.execute(statement)]
    return sorted(rows, key=lambda row: row.id)


@dataclass(frozen=True)
class Done:
    """A subject the destination is finished with, for now."""

    subject_id: int
    row_ids: tuple[int, ...]
    suppressed: bool | None = None  # the destination's state now; None: unchanged
    reason: str | None = None
    operation: str | None = None  # a push the platform answered: suppress | restore
    outcome: str | None = None  # confirmed | not_found | no_address


def settle_done(
    session: Session,
    destination: str,
    targets: str,
    observed_at: datetime,
    now: datetime,
    done: Sequence[Done],
) -> None:
    if not done:
        return
    row_ids = [row for item in done for row in item.row_ids]
    for chunk in _chunks(row_ids):
        session.execute(
            delete(OutboxRow)
            .where(OutboxRow.id.in_(chunk))
            .execution_options(synchronize_session=False)
        )
    # Parked rows of these subjects are settled by this newer answer.
    subjects = sorted({item.subject_id for item in done})
    for chunk in _chunks(subjects):
        session.execute(
            delete(OutboxRow)
            .where(
                OutboxRow.destination == destination,
                OutboxRow.subject_id.in_(chunk),
                OutboxRow.failed_at.is_not(None),
                OutboxRow.id < max(row_ids),
            )
            .execution_options(synchronize_session=False)
        )
    states = [
        {
            "destination": destination,
            "subject_id": item.subject_id,
            "suppressed": item.suppressed,
            "reason": item.reason if item.suppressed else None,
            "targets": targets,
            "observed_at": observed_at,
            "confirmed_at": now,
        }
        for item in done
        if item.suppressed is not None
    ]
    if states:
        statement = insert(session, DestinationSubject.__table__)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["destination", "subject_id"],
                set_={
                    key: statement.excluded[key]
                    for key in ("suppressed", "reason", "targets", "observed_at", "confirmed_at")
                },
                # A worker that read the subject earlier never overwrites a later one.
                where=DestinationSubject.__table__.c.observed_at <= statement.excluded.observed_at,
            ),
            states,
        )
    pushes = [
        {
            "destination": destination,
            "subject_id": item.subject_id,
            "operation": item.operation,
            "reason": item.reason,
            "outcome": item.outcome,
            "pushed_at": now,
        }
        for item in done
        if item.operation is not None
    ]
    if pushes:
        session.execute(sa_insert(DestinationPush.__table__), pushes)
    if any(item.outcome in (CONFIRMED, NOT_FOUND) for item in done):
        session.execute(
            update(Destination).where(Destination.name == destination).values(last_success_at=now)
        )


def backoff_seconds(attempts: int, sync: SyncSettings, rng: random.Random) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, times 0.5 to 1."""
    ceiling = min(sync.backoff_max_seconds, sync.backoff_seconds * 2 ** max(0, attempts - 1))
    return ceiling * (0.5 + rng.random() / 2)


@dataclass
class FailureTally:
    retrying: int = 0
    parked: int = 0
    paused_until: datetime | None = None


def settle_failed(
    session: Session,
    destination: str,
    worker: str,
    now: datetime,
    rows: Sequence[ClaimedRow],
    failure: Failure,
    sync: SyncSettings,
    rng: random.Random,
) -> FailureTally:
    """Release failed rows for a later attempt, or park them after too many.

    A 429 is not the rows' fault: it costs no attempt, the rows wait as long as
    the platform asked, and the destination pauses for everyone.
    """
    tally = FailureTally()
    if not rows:
        return tally
    mine = OutboxRow.claimed_by == worker
    if failure.kind == FailureKind.RATE_LIMITED:
        wait = failure.retry_after if failure.retry_after is not None else sync.rate_limit_seconds
        until = now + timedelta(seconds=wait)
        for chunk in _chunks([row.id for row in rows]):
            session.execute(
                update(OutboxRow)
                .where(OutboxRow.id.in_(chunk), mine)
                .values(
                    claimed_by=None,
                    claimed_until=None,
                    available_at=until,
                    last_error=failure.message,
                )
                .execution_options(synchronize_session=False)
            )
        session.execute(
            update(Destination).where(Destination.name == destination).values(paused_until=until)
        )
        tally.retrying = len(rows)
        tally.paused_until = until
    else:
        limit = (
            sync.permanent_attempts if failure.kind == FailureKind.PERMANENT else sync.max_attempts
        )
        limit = min(limit, sync.max_attempts)
        by_attempts: dict[int, list[int]] = {}
        for row in rows:
            by_attempts.setdefault(row.attempts + 1, []).append(row.id)
        for attempts, ids in sorted(by_attempts.items()):
            parked = attempts >= limit
            values: dict[str, object] = {
                "attempts": attempts,
                "claimed_by": None,
                "claimed_until": None,
                "last_error": failure.message,
            }
            if parked:
                values["failed_at"] = now
                tally.parked += len(ids)
            else:
                delay = failure.retry_after or backoff_seconds(attempts, sync, rng)
                values["available_at"] = now + timedelta(seconds=delay)
                tally.retrying += len(ids)
            for chunk in _chunks(ids):
                session.execute(
                    update(OutboxRow)
                    .where(OutboxRow.id.in_(chunk), mine)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
    session.execute(
        update(Destination)
        .where(Destination.name == destination)
        .values(last_error=failure.message, last_error_at=now)
    )
    return tally


def retry_parked(session: Session, destination: str | None = None) -> int:
    """Put parked rows back in the queue with a fresh attempt budget (operator)."""
    statement = (
        update(OutboxRow)
        .where(OutboxRow.failed_at.is_not(None))
        .values(failed_at=None, attempts=0, available_at=None, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    if destination is not None:
        statement = statement.where(OutboxRow.destination == destination)
    return int(session.execute(statement).rowcount or 0)


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
    outcome: str
    pushed_at: datetime


def pushes_for(session: Session, subject_id: int) -> list[PushRecord]:
    """Every push a destination answered for this subject, oldest first (export)."""
    rows = session.scalars(
        select(DestinationPush)
        .where(DestinationPush.subject_id == subject_id)
        .order_by(DestinationPush.pushed_at, DestinationPush.id)
    )
    return [
        PushRecord(row.destination, row.operation, row.reason, row.outcome, row.pushed_at)
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
