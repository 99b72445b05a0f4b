"""The destination outbox: written with the change, claimed under a lease,
settled after the platform answered.

- `enqueue_subject_change` runs inside the caller's transaction (the consent or
  block write), so a change that rolls back leaves no row, and a committed one
  always has its rows.
- `claim` marks up to N rows as this worker's for a lease, in one statement
  (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serialises writers). A worker
  that dies leaves rows whose lease runs out: another worker claims them again.
  On PostgreSQL sooner: a claiming connection holds an advisory lock standing for
  its worker, the server drops it with a dead worker's connections, and the next
  worker to look (`release_dead_claims`, at its start) puts those rows back.
- `settle_done` / `settle_failed` record the platform's answer: a row is deleted
  only when the platform confirmed; a failure waits with exponential backoff and
  jitter, a 429 waits as long as asked, and after too many attempts the row is
  parked (failed_at) until an operator retries it; a configuration failure (the
  answer did not come from the platform) parks it at once.

Services flush, never commit: the caller's edge commits.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    column,
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
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from suppression.connectors.base import Failure, FailureKind
from suppression.connectors.settings import SyncSettings
from suppression.store.dialects import (
    bulk_insert,
    dialect_name,
    execute_dml,
    id_array_text,
    id_filters,
    insert,
)
from suppression.store.models.destinations import (
    Destination,
    DestinationPush,
    DestinationSubject,
    OutboxRow,
)
from suppression.store.schema import BigId, UTCDateTime, utcnow

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
        # Unless an unclaimed, unparked row for this subject already waits there
        # to be pushed (a row awaiting an accepted request's outcome does not:
        # the change came after that push).
        ~exists().where(
            _WAITING_ROW.c.destination == _REGISTRY.c.name,
            _WAITING_ROW.c.subject_id == _SUBJECT,
            _WAITING_ROW.c.claimed_by.is_(None),
            _WAITING_ROW.c.failed_at.is_(None),
            _WAITING_ROW.c.request_id.is_(None),
        ),
    ),
)


_QUEUED = (
    func.unnest(cast(bindparam("ids", type_=Text()), postgresql.ARRAY(BigInteger)))
    .table_valued(column("subject_id", BigInteger))
    .render_derived("queued")
)
# PostgreSQL's bulk form of _ENQUEUE for one destination (full reconcile).
_ENQUEUE_MANY = (
    sa_insert(_OUTBOX)
    .from_select(
        ["destination", "subject_id", "created_at", "attempts"],
        select(
            bindparam("destination", type_=String()),
            _QUEUED.c.subject_id,
            _AT,
            literal(0, type_=Integer()),
        ).where(
            ~select(literal(1))
            .where(
                _WAITING_ROW.c.destination == bindparam("destination", type_=String()),
                _WAITING_ROW.c.subject_id == _QUEUED.c.subject_id,
                _WAITING_ROW.c.claimed_by.is_(None),
                _WAITING_ROW.c.failed_at.is_(None),
            )
            # OFFSET keeps PostgreSQL from turning NOT EXISTS into an anti-join: it
            # hashed every waiting row of the destination for each chunk (O(N^2)
            # over a full reconcile) where one probe of the subject index a row will do.
            .offset(0)
            .exists()
        ),
    )
    .execution_options(preserve_rowcount=True)  # how many rows were added
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
    """Rows for many subjects of one destination (full reconcile); returns how many.

    A subject whose row awaits an accepted request's outcome gets none: that row
    is confirmed or pushed again by itself.

    PostgreSQL: one INSERT ... SELECT over the id array, each subject's waiting row
    looked up in the subject index. SQLite: look up, then insert, per chunk."""
    ids = list(subject_ids)
    if not ids:
        return 0
    if dialect_name(session) == "postgresql":
        return int(
            execute_dml(
                session,
                _ENQUEUE_MANY,
                {"destination": destination, "ids": id_array_text(ids), "at": now},
            ).rowcount
            or 0
        )
    added = 0
    for chunk in _chunks(ids):
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


@dataclass(frozen=True)
class AwaitingRow:
    """A row whose push the platform accepted and processes later."""

    id: int
    subject_id: int
    attempts: int
    request_id: str
    operation: str
    reason: str | None
    requested_at: datetime


def _awaiting(
    id: int,
    subject_id: int,
    attempts: int,
    request_id: str | None,
    operation: str | None,
    reason: str | None,
    requested_at: datetime | None,
) -> AwaitingRow:
    # mark_accepted writes the request's columns together, and an awaiting row is
    # one whose request_id is set.
    if request_id is None or operation is None or requested_at is None:
        raise ValueError(f"outbox row {id} awaits a status read without its request")
    return AwaitingRow(id, subject_id, attempts, request_id, operation, reason, requested_at)


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


@dataclass(frozen=True)
class Accepted:
    """Rows of one subject whose push the platform accepted under `request_id`."""

    row_ids: tuple[int, ...]
    request_id: str
    operation: str
    reason: str | None


def settle_accepted(
    session: Session,
    worker: str,
    requested_at: datetime,
    read_at: datetime,
    accepted: Sequence[Accepted],
) -> None:
    """Keep accepted rows with the request to follow; its status is read from
    `read_at` on. The rows stay until the request's final status."""
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for item in accepted:
        groups.setdefault((item.request_id, item.operation, item.reason), []).extend(item.row_ids)
    for (request_id, operation, reason), row_ids in groups.items():
        for ids in id_filters(session, OutboxRow.id, sorted(row_ids)):
            session.execute(
                update(OutboxRow)
                .where(ids, OutboxRow.claimed_by == worker)
                .values(
                    request_id=request_id,
                    request_operation=operation,
                    request_reason=reason,
                    requested_at=requested_at,
                    claimed_by=None,
                    claimed_until=None,
                    available_at=read_at,
                )
                .execution_options(synchronize_session=False)
            )


def read_again(session: Session, worker: str, row_ids: Sequence[int], at: datetime) -> None:
    """The request is not final yet: release its rows until the next status read."""
    for ids in id_filters(session, OutboxRow.id, sorted(row_ids)):
        session.execute(
            update(OutboxRow)
            .where(ids, OutboxRow.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None, available_at=at)
            .execution_options(synchronize_session=False)
        )


def liveness_key(worker: str) -> int:
    """The advisory lock key that stands for a worker: 63 bits of its name's SHA-256."""
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:8], "big") >> 1


_LIVENESS = "suppression_outbox_liveness"  # in the DBAPI connection's info: the worker


def hold_liveness(session: Session, worker: str) -> None:
    """PostgreSQL: the connection that claims for `worker` holds a shared
    session-level advisory lock on its key until the connection closes.

    While any such connection is open the worker counts as alive and its rows
    wait out their lease; when the worker dies (SIGKILL, a lost host) the server
    drops its connections and the locks with them, and `release_dead_claims`
    puts its rows back at once. The lock outlives transactions; `info` stays
    with the pooled connection, so it is taken once per connection.

    A connection stands for one worker at a time: claiming for another worker
    (the API builds one per "sync now" request) moves its lock, so locks never
    pile up on long-lived pooled connections. A worker whose every claiming
    connection moved on looks gone, and its rows may be taken before its lease
    ends: a second push of the same subjects, never a lost one."""
    if dialect_name(session) != "postgresql":
        return
    connection = session.connection()
    held = connection.info.get(_LIVENESS)
    if held == worker:
        return
    if held is not None:
        connection.execute(select(func.pg_advisory_unlock_shared(liveness_key(held))))
    connection.execute(select(func.pg_advisory_lock_shared(liveness_key(worker))))
    connection.info[_LIVENESS] = worker


# Advisory locks on a bigint key: high half in classid, low half in objid, objsubid 1.
_HELD_KEYS = text(
    "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
)


def release_dead_claims(session: Session, destination: str, now: datetime) -> int:
    """PostgreSQL: put back the rows of workers that no longer hold their
    liveness lock (see `hold_liveness`), without waiting for their lease to run
    out; answers how many. SQLite has no such lock: rows wait for the lease.

    A worker whose every claiming connection closed while it lives (the pool
    recycled them all mid-batch) would lose its rows to another worker early:
    the subject is pushed twice, which the platforms take as a no-op, and both
    answers are recorded. Nothing is lost either way."""
    if dialect_name(session) != "postgresql":
        return 0
    in_flight = OutboxRow.destination == destination, OutboxRow.claimed_until >= now
    claimants = session.scalars(select(OutboxRow.claimed_by).where(*in_flight).distinct()).all()
    if not claimants:
        return 0
    held = set(session.scalars(_HELD_KEYS))
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
    row_ids = sorted(row for item in done for row in item.row_ids)
    for ids in id_filters(session, OutboxRow.id, row_ids):
        session.execute(delete(OutboxRow).where(ids).execution_options(synchronize_session=False))
    # Parked rows of these subjects are settled by this newer answer.
    subjects = sorted({item.subject_id for item in done})
    for chunk in id_filters(session, OutboxRow.subject_id, subjects):
        session.execute(
            delete(OutboxRow)
            .where(
                chunk,
                OutboxRow.destination == destination,
                OutboxRow.failed_at.is_not(None),
                OutboxRow.id < row_ids[-1],
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
    subject_table = DestinationSubject.__table__

    def newer_wins(statement: Any) -> Any:
        return statement.on_conflict_do_update(
            index_elements=["destination", "subject_id"],
            set_={
                key: statement.excluded[key]
                for key in ("suppressed", "reason", "targets", "observed_at", "confirmed_at")
            },
            # A worker that read the subject earlier never overwrites a later one.
            where=subject_table.c.observed_at <= statement.excluded.observed_at,
        )

    # PostgreSQL: staged by COPY, one INSERT ... SELECT each (SQLite: executemany).
    bulk_insert(session, subject_table, states, newer_wins)
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
    bulk_insert(session, DestinationPush.__table__, pushes, lambda statement: statement)
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


# A failed row is pushed again: the request it followed, if any, is over.
_NO_REQUEST: dict[str, Any] = {
    "request_id": None,
    "request_operation": None,
    "request_reason": None,
    "requested_at": None,
}


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
    the platform asked, and the destination pauses for everyone. Rows that
    awaited an accepted request's outcome go back to being pushed.
    """
    tally = FailureTally()
    if not rows:
        return tally
    mine = OutboxRow.claimed_by == worker
    if failure.kind == FailureKind.RATE_LIMITED:
        wait = failure.retry_after if failure.retry_after is not None else sync.rate_limit_seconds
        until = now + timedelta(seconds=wait)
        for ids in id_filters(session, OutboxRow.id, sorted(row.id for row in rows)):
            session.execute(
                update(OutboxRow)
                .where(ids, mine)
                .values(
                    claimed_by=None,
                    claimed_until=None,
                    available_at=until,
                    last_error=failure.message,
                    **_NO_REQUEST,
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
        if failure.kind == FailureKind.CONFIGURATION:
            limit = 1  # retrying a wrong base URL proves nothing: park, the operator acts
        limit = min(limit, sync.max_attempts)
        by_attempts: dict[int, list[int]] = {}
        for row in rows:
            by_attempts.setdefault(row.attempts + 1, []).append(row.id)
        for attempts, attempt_ids in sorted(by_attempts.items()):
            parked = attempts >= limit
            values: dict[str, object] = {
                "attempts": attempts,
                "claimed_by": None,
                "claimed_until": None,
                "last_error": failure.message,
                **_NO_REQUEST,
            }
            if parked:
                values["failed_at"] = now
                tally.parked += len(attempt_ids)
            else:
                delay = failure.retry_after or backoff_seconds(attempts, sync, rng)
                values["available_at"] = now + timedelta(seconds=delay)
                tally.retrying += len(attempt_ids)
            for chunk in id_filters(session, OutboxRow.id, sorted(attempt_ids)):
                session.execute(
                    update(OutboxRow)
                    .where(chunk, mine)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
    session.execute(
        update(Destination)
        .where(Destination.name == destination)
        .values(last_error=failure.message, last_error_at=now)
    )
    return tally


def pause(session: Session, destination: str, until: datetime) -> None:
    """The platform asked us to wait (429): no call to it before `until`."""
    session.execute(
        update(Destination).where(Destination.name == destination).values(paused_until=until)
    )


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
    return int(execute_dml(session, statement).rowcount or 0)


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


def settle_reported_by_platform(
    session: Session, destination: str, subject_id: int, reason: str, now: datetime
) -> None:
    """The platform itself reported this person suppressed (Keap's own opt-out list):
    nothing is pushed back to it. Its waiting row goes, and it is recorded as
    holding the person suppressed, so the drain does not echo the change."""
    targets = session.scalar(
        select(Destination.targets).where(
            Destination.name == destination, Destination.enabled.is_(True)
        )
    )
    if targets is None:
        return
    session.execute(
        delete(OutboxRow)
        .where(
            OutboxRow.destination == destination,
            OutboxRow.subject_id == subject_id,
            OutboxRow.claimed_by.is_(None),
            OutboxRow.failed_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
    statement = insert(session, DestinationSubject).values(
        destination=destination,
        subject_id=subject_id,
        suppressed=True,
        reason=reason,
        targets=targets,
        observed_at=now,
        confirmed_at=now,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["destination", "subject_id"],
            set_={
                key: statement.excluded[key]
                for key in ("suppressed", "reason", "targets", "observed_at", "confirmed_at")
            },
            where=DestinationSubject.observed_at <= statement.excluded.observed_at,
        )
    )
