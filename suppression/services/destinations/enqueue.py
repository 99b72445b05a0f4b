"""Writing outbox rows: one per enabled destination for a subject whose state
changed, in the transaction that changes it.

A change that rolls back leaves no row, and a committed one always has its rows.
Whether a row means a removal is decided when it is pushed, from the state then.
Services flush, never commit: the caller's edge commits.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    column,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy import insert as sa_insert
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

from suppression.services.destinations.queue_status import pending_removals
from suppression.store.dialects import (
    analyze,
    dialect_name,
    execute_dml,
    id_array_text,
    insert,
)
from suppression.store.models.destinations import Destination, OutboxRow
from suppression.store.schema import BigId, UTCDateTime, utcnow

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


_UNPARKED_ROW = (
    select(literal(1))
    .where(
        _WAITING_ROW.c.destination == bindparam("destination", type_=String()),
        _WAITING_ROW.c.subject_id == _QUEUED.c.subject_id,
        _WAITING_ROW.c.failed_at.is_(None),
    )
    .offset(0)  # one probe of the subject index a row, as in _ENQUEUE_MANY
    .exists()
)
# PostgreSQL: rows for a reconcile's chunk, leased to the reconciling worker.
_ENQUEUE_LEASED = (
    sa_insert(_OUTBOX)
    .from_select(
        ["destination", "subject_id", "created_at", "attempts", "claimed_by", "claimed_until"],
        select(
            bindparam("destination", type_=String()),
            _QUEUED.c.subject_id,
            _AT,
            literal(0, type_=Integer()),
            bindparam("worker", type_=String()),
            bindparam("until", type_=UTCDateTime()),
        ).where(~_UNPARKED_ROW),
    )
    .returning(_OUTBOX.c.id, _OUTBOX.c.subject_id)
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


def _with_rows(
    session: Session, destination: str, subject_ids: Sequence[int], *where: ColumnElement[bool]
) -> set[int]:
    """SQLite: which of `subject_ids` have an unparked row at `destination` (and
    whatever else `where` asks of it)."""
    return set(
        session.scalars(
            select(OutboxRow.subject_id).where(
                OutboxRow.destination == destination,
                OutboxRow.subject_id.in_(subject_ids),
                OutboxRow.failed_at.is_(None),
                *where,
            )
        )
    )


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
        waiting = _with_rows(session, destination, chunk, OutboxRow.claimed_by.is_(None))
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
    analyze(session, "destination_outbox")


def enqueue_leased(
    session: Session,
    destination: str,
    subject_ids: Sequence[int],
    now: datetime,
    worker: str,
    until: datetime,
) -> list[tuple[int, int]]:
    """Rows for a reconcile's chunk, leased to `worker` until `until` so that it
    pushes them itself; answers (row id, subject id) of the rows added.

    A subject that has an unparked row at the destination already (waiting, in
    flight, or awaiting a request's outcome) gets none: that row carries it, and
    one subject is never in flight twice."""
    ids = sorted(set(subject_ids))
    if not ids:
        return []
    if dialect_name(session) == "postgresql":
        parameters = {
            "destination": destination,
            "ids": id_array_text(ids),
            "at": now,
            "worker": worker,
            "until": until,
        }
        # Core rows fetched at once: row by row through the ORM cost 1.2 s a million.
        leased = session.connection().execute(_ENQUEUE_LEASED, parameters).all()
        return [(row_id, subject_id) for row_id, subject_id in leased]
    added: list[tuple[int, int]] = []
    for chunk in _chunks(ids):
        carried = _with_rows(session, destination, chunk)
        values = [
            {
                "destination": destination,
                "subject_id": subject_id,
                "created_at": now,
                "attempts": 0,
                "claimed_by": worker,
                "claimed_until": until,
            }
            for subject_id in chunk
            if subject_id not in carried
        ]
        if values:
            statement = insert(session, OutboxRow).returning(OutboxRow.id, OutboxRow.subject_id)
            added += [(row.id, row.subject_id) for row in session.execute(statement, values)]
    return added
