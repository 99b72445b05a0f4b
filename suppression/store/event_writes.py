"""Writing a batch of linked events: PostgreSQL takes them by binary COPY with ids
reserved from the table's sequence; SQLite by one executemany, ids read back by
their chain numbers. The caller holds the chain head lock throughout."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from suppression.domain.chain import BatchLinker
from suppression.domain.event_rows import EventRow, PreparedLink
from suppression.store.dialects import binary_copy_dumpers, dialect_name, driver_cursor, insert
from suppression.store.models import ConsentEvent

# Columns every bulk-appended event fills, and the optional ones (ip, user agent,
# campaign, notice version; the sealed evidence) that go through COPY only when
# some event has one.
_LINKED_COLUMNS = (
    ("id", "int8"),
    ("subject_id", "int8"),
    ("action", "text"),
    ("purpose", "text"),
    ("source", "text"),
    ("actor", "text"),
    ("occurred_at", "timestamptz"),
    ("recorded_at", "timestamptz"),
    ("country", "text"),
    ("chain_seq", "int8"),
    ("prev_hash", "bytea"),
    ("row_hash", "bytea"),
    ("personal_digest", "bytea"),
    ("personal_salt", "bytea"),
)
_OPTIONAL_COLUMNS = ("ip", "user_agent", "campaign", "notice_version")


def write_linked_events(
    session: Session,
    events: Sequence[EventRow],
    prepared: Sequence[PreparedLink],
    linker: BatchLinker,
    erased: set[int],
) -> Sequence[int]:
    """Link `events` after the chain head `linker` starts from and write them;
    their ids, in the order given."""
    if dialect_name(session) == "postgresql":
        ids = _reserve_event_ids(session, len(events))
        _copy_events(session, events, prepared, linker, ids, erased)
        return ids
    first = linker.seq + 1
    _insert_events(session, events, prepared, linker, erased)
    by_seq = dict(
        session.execute(
            select(ConsentEvent.chain_seq, ConsentEvent.id).where(
                ConsentEvent.chain_seq.between(first, linker.seq)
            )
        ).all()
    )
    return [by_seq[number] for number in range(first, linker.seq + 1)]


def _insert_events(
    session: Session,
    events: Sequence[EventRow],
    prepared: Sequence[PreparedLink],
    linker: BatchLinker,
    erased: set[int],
) -> None:
    """SQLite: one executemany."""
    rows = []
    for event, (parts, sealed) in zip(events, prepared, strict=True):
        chain_seq, previous, row_hash = linker.link(event.subject_id, parts)
        row = event._asdict()
        del row["evidence"]
        row.update(
            evidence_sealed=sealed,
            chain_seq=chain_seq,
            prev_hash=previous,
            row_hash=row_hash,
            personal_digest=parts.digest,
            personal_salt=None if event.subject_id in erased else parts.salt,
        )
        rows.append(row)
    session.execute(insert(session, ConsentEvent.__table__), rows)


def _reserve_event_ids(session: Session, count: int) -> range:
    """`count` consecutive ids from the events' own sequence, in one statement.

    Safe because every writer of events holds the chain head lock (taken above)
    before it draws an id, so no other nextval runs between ours and the setval.
    """
    last = session.scalar(
        text("SELECT setval('consent_events_id_seq', nextval('consent_events_id_seq') + :n - 1)"),
        {"n": count},
    )
    return range(last - count + 1, last + 1)


def _copy_events(
    session: Session,
    events: Sequence[EventRow],
    prepared: Sequence[PreparedLink],
    linker: BatchLinker,
    ids: range,
    erased: set[int],
) -> None:
    """Links and COPYs in one pass: the database inserts the rows already sent
    while the next ones are linked."""
    optional = [
        name
        for at, name in enumerate(_OPTIONAL_COLUMNS, start=9)
        if any(event[at] is not None for event in events)
    ]
    sealed = any(link.evidence_sealed is not None for link in prepared)
    names = [name for name, _type in _LINKED_COLUMNS] + optional
    types = [kind for _name, kind in _LINKED_COLUMNS] + ["text"] * len(optional)
    if sealed:
        names.append("evidence_sealed")
        types.append("bytea")
    cursor = driver_cursor(session)
    binary_copy_dumpers(cursor)
    try:
        statement = f"COPY consent_events ({', '.join(names)}) FROM STDIN (FORMAT BINARY)"
        with cursor.copy(statement) as copy:
            copy.set_types(types)
            write_row, link = copy.write_row, linker.link
            for event, (parts, evidence), event_id in zip(events, prepared, ids, strict=True):
                chain_seq, previous, row_hash = link(event.subject_id, parts)
                row: tuple[object, ...] = (
                    event_id,
                    event.subject_id,
                    event.action,
                    event.purpose,
                    event.source,
                    event.actor,
                    event.occurred_at,
                    event.recorded_at,
                    event.country,
                    chain_seq,
                    previous,
                    row_hash,
                    parts.digest,
                    None if erased and event.subject_id in erased else parts.salt,
                )
                if optional:
                    row += tuple(getattr(event, name) for name in optional)
                if sealed:
                    row += (evidence,)
                write_row(row)
    finally:
        cursor.close()
