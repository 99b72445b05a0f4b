"""The check's one read: the stored state of many keyed indexes at once, from
`decision_inputs`, on a plain DB-API connection (sqlite3 or psycopg) so that the
helper processes, which hold no engine, run the same SQL as the web worker. It
imports no SQLAlchemy."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Protocol, overload

INDEX_BYTES = 32  # HMAC-SHA256

# One row per stored subject, from `decision_inputs` (one lookup by keyed index;
# its triggers copy it from the view of migration 0013 over subjects,
# consent_states and blocks). A row starts
# with the key's position in the sorted keys (an int parses faster than the key).
# Only what the decision can read travels, so that most rows repeat another row
# exactly: erased as 1 or NULL; purchase and inquiry times only where soft opt-in
# is on; the two consent times only when both statuses exist.
_COLUMNS = """k.n, d.country, d.country_source, CASE WHEN d.erased_at IS NOT NULL THEN 1 END,
       {relationship},
       d.consents -> {p} ->> 0,
       CASE WHEN d.consents -> 'all' IS NOT NULL THEN {p_at} END,
       d.consents -> 'all' ->> 0,
       CASE WHEN d.consents -> {p} IS NOT NULL THEN {a_at} END,
       d.blocks"""
_RELATIONSHIP = ("d.last_purchase_at, d.last_inquiry_at", "NULL, NULL")

# SQLite: the sorted indexes travel as one blob, cut into keys by a recursive CTE
# (no temp table to fill row by row). ?3 is the purpose as a JSON path.
_SQLITE_SELECT = f"""
WITH RECURSIVE k(n, idx) AS (
    SELECT 0, substr(?1, 1, {INDEX_BYTES})
    UNION ALL
    SELECT n + 1, substr(?1, (n + 1) * {INDEX_BYTES} + 1, {INDEX_BYTES}) FROM k WHERE n + 1 < ?2
)
SELECT {{columns}}
FROM k CROSS JOIN decision_inputs d ON d.email_index = k.idx
"""
_SQLITE_COLUMNS = {
    "p": "?3",
    "p_at": "d.consents -> ?3 ->> 1",
    "a_at": "d.consents -> 'all' ->> 1",
}
# PostgreSQL: the sorted indexes travel as one binary bytea parameter, cut in the
# server (a list parameter costs psycopg ~8 µs per element to adapt).
_PG_SELECT = f"""
SELECT {{columns}}
FROM generate_series(0, %(count)s - 1) k(n)
JOIN decision_inputs d
  ON d.email_index = substring(%(keys)b FROM k.n * {INDEX_BYTES} + 1 FOR {INDEX_BYTES})
"""
_PG_COLUMNS = {
    "p": "%(purpose)s::text",
    "p_at": "(d.consents -> %(purpose)s::text ->> 1)::timestamptz",
    "a_at": "(d.consents -> 'all' ->> 1)::timestamptz",
}


def _select(template: str, columns: dict[str, str], relationships: bool) -> str:
    return template.format(
        columns=_COLUMNS.format(relationship=_RELATIONSHIP[not relationships], **columns)
    )


# A chunk is a few percent of the store: index lookups per key beat the hash
# join over the whole table that the planner may prefer, and JIT compiling
# costs more than it saves (benchmarks/checks.py).
_PG_LOCAL_SETTINGS = (
    "SET LOCAL enable_hashjoin = off",
    "SET LOCAL enable_mergejoin = off",
    "SET LOCAL enable_seqscan = off",
    "SET LOCAL jit = off",
)


class _ToTime(Protocol):
    """A stored time as the driver gives it, as an aware datetime; None stays None."""

    @overload
    def __call__(self, value: None, /) -> None: ...
    @overload
    def __call__(self, value: Any, /) -> datetime: ...


@overload
def _sqlite_time(value: None, /) -> None: ...
@overload
def _sqlite_time(value: str, /) -> datetime: ...
def _sqlite_time(value: str | None, /) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


@overload
def _pg_time(value: None, /) -> None: ...
@overload
def _pg_time(value: datetime, /) -> datetime: ...
def _pg_time(value: datetime | None, /) -> datetime | None:
    return value


class StoreReader:
    """Fetches the stored state of many indexes at once, on a DB-API connection
    (sqlite3 or psycopg) inside whatever transaction it has open. `relationships`:
    whether purchase and inquiry times can matter (soft opt-in is on somewhere)."""

    def __init__(self, connection: Any, dialect: str, relationships: bool = True):
        self.connection = connection
        self.dialect = dialect
        self.to_time: _ToTime = _sqlite_time if dialect == "sqlite" else _pg_time
        if dialect == "sqlite":
            self._select = _select(_SQLITE_SELECT, _SQLITE_COLUMNS, relationships)
        else:
            self._select = _select(_PG_SELECT, _PG_COLUMNS, relationships)

    def fetch(self, indexes: set[bytes], purpose: str) -> dict[bytes, tuple[Any, ...]]:
        """Keyed index -> its row, for each stored subject among `indexes`; a row's
        first column is not part of its state."""
        if not indexes:
            return {}
        keys = sorted(indexes)  # the store's index is read in order, not at random
        blob = b"".join(keys)
        if len(blob) != INDEX_BYTES * len(keys):  # the query cuts it every 32 bytes
            raise ValueError("a keyed index is not 32 bytes long")
        cursor = self.connection.cursor()
        try:
            if self.dialect == "sqlite":
                cursor.execute(self._select, (blob, len(keys), f'$."{purpose}"'))
            else:
                for setting in _PG_LOCAL_SETTINGS:
                    cursor.execute(setting)
                cursor.execute(self._select, {"purpose": purpose, "keys": blob, "count": len(keys)})
            return {keys[row[0]]: row for row in cursor.fetchall()}
        finally:
            cursor.close()
