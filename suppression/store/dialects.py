"""Where SQLite and PostgreSQL differ, written once: upserts, rows claimed under a
lock, id lists as one parameter, bulk copies into staged tables, calendar days."""

from __future__ import annotations

import typing
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from psycopg.adapt import PyFormat
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    SQLColumnExpression,
    Table,
    Text,
    bindparam,
    cast,
    column,
    func,
    literal,
    select,
    table,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable


def execute_dml(
    session: Session, statement: Executable, params: Mapping[str, Any] | None = None
) -> CursorResult[Any]:
    """Session.execute of an INSERT, UPDATE or DELETE. Its result is a CursorResult
    (with the rowcount), which Session.execute's typing, a plain Result, does not say."""
    return typing.cast(CursorResult[Any], session.execute(statement, params))


def insert(session: Session, table: Any) -> Any:
    """`INSERT` that supports `on_conflict_do_nothing/do_update` on either database."""
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise RuntimeError(f"unsupported database {name}")


def dialect_name(session: Session) -> str:
    return session.get_bind().dialect.name


def claimed(session: Session, query: Select[Any], skip_locked: bool = True) -> Select[Any]:
    """Rows read to be changed by one claimant: on PostgreSQL locked for the
    transaction (with skip_locked, rows another claimant holds are passed over, so
    several processes share the work). SQLite's write lock serialises claimants."""
    if dialect_name(session) == "postgresql":
        return query.with_for_update(skip_locked=skip_locked)
    return query


def without_jit(session: Session) -> None:
    """PostgreSQL: no JIT compiling until the transaction ends. Statements planned
    for many rows would be compiled at a cost above what it saves."""
    if dialect_name(session) == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


def analyze(session: Session, table_name: str) -> None:
    """PostgreSQL: fresh planner statistics for a table now, not when autovacuum
    gets to it. (SQLite plans without them.)"""
    if dialect_name(session) == "postgresql":
        session.execute(text(f"ANALYZE {table_name}"))


def utc_day(session: Session, column: SQLColumnExpression[datetime]) -> ColumnElement[object]:
    """The UTC calendar day of a time column."""
    if dialect_name(session) == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite keeps UTC times as text: date() reads them


def id_chunks(session: Session, ids: Sequence[int], chunk: int = 2_000) -> list[Sequence[int]]:
    """Ids in as few lists as `among` takes: one on PostgreSQL, `chunk` at a time
    on SQLite (its bound-parameter limit)."""
    if not ids:
        return []
    if dialect_name(session) == "postgresql":
        return [ids]
    return [ids[start : start + chunk] for start in range(0, len(ids), chunk)]


def id_array_text(ids: Sequence[int]) -> str:
    """PostgreSQL's text form of a bigint[] (`{1,2,3}`): psycopg adapts a list
    id by id in Python (~2 µs an id, 20 ms a 10,000-row batch); this is one join."""
    return "{" + ",".join(map(str, ids)) + "}"


def id_array(ids: Sequence[int]) -> ColumnElement[Any]:
    """PostgreSQL: ids as one bigint[] bound parameter."""
    return cast(literal(id_array_text(ids), Text()), postgresql.ARRAY(BigInteger))


def among(session: Session, target: Any, ids: Sequence[int]) -> ColumnElement[bool]:
    """`target IN ids`. PostgreSQL: `IN (SELECT unnest(array))`, a single bound
    parameter however many ids (an IN list costs SQLAlchemy and psycopg work per
    id on every execution, more than the database's own work on a 10,000-row
    batch). Not `= ANY(array)`: with statistics older than the table (a table
    filled since it was last analysed) the planner scanned the whole table and
    tested each row against the array one element at a time (269 s for 10,000
    ids against 300,000 rows); a semi-join with the unnested ids probes the index."""
    if dialect_name(session) == "postgresql":
        return target.in_(select(func.unnest(id_array(ids))).scalar_subquery())
    return target.in_(ids)


def id_filters(session: Session, target: Any, ids: Sequence[int]) -> Iterator[ColumnElement[bool]]:
    """`target IN ids` as few clauses as each database takes (none for no ids)."""
    for chunk in id_chunks(session, ids):
        yield among(session, target, chunk)


def binary_copy_dumpers(cursor: Any) -> None:
    """Binary COPY of bytea columns through psycopg's C dumper for bytes.

    By type oid psycopg picks its DB-API `Binary` dumper, pure Python, which costs
    more than the rest of a row; this cursor's adapters use the C one instead."""
    cursor.adapters.register_dumper(bytes, cursor.adapters.get_dumper(bytes, PyFormat.BINARY))


def _column_types(cursor: Any, table_name: str, names: Sequence[str]) -> list[int]:
    """The type oids of a table's columns, as binary COPY needs them exactly."""
    oids = dict(
        cursor.execute(
            "SELECT attname, atttypid::int FROM pg_attribute"
            " WHERE attrelid = %s::regclass AND attnum > 0 AND NOT attisdropped",
            (table_name,),
        ).fetchall()
    )
    return [oids[name] for name in names]


def _copy_in(cursor: Any, table_name: str, names: Sequence[str], rows: Sequence[Any]) -> None:
    """Binary COPY of rows (tuples in the order of `names`, or dicts) into a table."""
    types = _column_types(cursor, table_name, names)
    binary_copy_dumpers(cursor)
    with cursor.copy(f"COPY {table_name} ({', '.join(names)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(types)
        if rows and isinstance(rows[0], tuple):
            for values in rows:
                copy.write_row(values)
        else:
            for row in rows:
                copy.write_row([row[n] for n in names])


def driver_cursor(session: Session) -> Any:
    """A cursor of the session's own driver connection (psycopg), for COPY."""
    driver = session.connection().connection.driver_connection
    if driver is None:  # only once the pool has invalidated the connection
        raise RuntimeError("the database connection is closed")
    return driver.cursor()


def copy_rows(session: Session, target: Table, columns: Sequence[str], rows: Sequence[Any]) -> None:
    """PostgreSQL: rows COPYed straight into `target`, for rows that cannot conflict
    (cheaper than staging and an upsert)."""
    if not rows:
        return
    cursor = driver_cursor(session)
    try:
        _copy_in(cursor, target.name, columns, rows)
    finally:
        cursor.close()


def _stage(session: Session, types: Mapping[str, Any], rows: Sequence[Any]) -> Any:
    """PostgreSQL: the rows COPYed into a temporary table, for set-based statements.
    Rows are dicts, or tuples in the order of `types`."""
    # Temporary tables are the connection's own and dropped at commit; a random
    # name keeps two stagings apart however the connection is shared.
    name = f"staged_{uuid.uuid4().hex}"
    dialect = session.get_bind().dialect
    columns = ", ".join(f"{n} {t.compile(dialect=dialect)}" for n, t in types.items())
    cursor = driver_cursor(session)
    try:
        cursor.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
        _copy_in(cursor, name, list(types), rows)
    finally:
        cursor.close()
    return table(name, *(column(n, t) for n, t in types.items()))


def bulk_insert(
    session: Session,
    target: Table,
    rows: Sequence[Any],
    conflict: Callable[[Any], Any],
    columns: Sequence[str] | None = None,
) -> None:
    """Insert many rows with an ON CONFLICT clause (`conflict(insert) -> insert`):
    PostgreSQL stages them by COPY and inserts with one INSERT ... SELECT; SQLite
    runs one executemany. Rows are dicts, or tuples in the order of `columns`
    (cheaper by the million)."""
    if not rows:
        return
    names = list(columns or rows[0])
    if dialect_name(session) == "postgresql":
        staged = _stage(session, {n: target.c[n].type for n in names}, rows)
        statement = insert(session, target).from_select(names, select(*staged.c))
        session.execute(conflict(statement))
    else:
        if columns is not None:
            rows = [dict(zip(names, values, strict=True)) for values in rows]
        session.execute(conflict(insert(session, target)), rows)


def bulk_insert_returning(
    session: Session,
    target: Table,
    rows: Sequence[Any],
    conflict: Callable[[Any], Any],
    returning: tuple[Any, ...],
    columns: Sequence[str] | None = None,
) -> Sequence[Any] | None:
    """PostgreSQL: `bulk_insert` with RETURNING, in one statement. None on SQLite,
    where the caller inserts and reads back instead.

    The rows come back as the driver gives them (plain tuples; times in the
    session's zone): SQLAlchemy's per-row result handling costs more than the
    statement itself when an import chunk returns 50,000 rows."""
    if dialect_name(session) != "postgresql" or not rows:
        return None
    names = list(columns or rows[0])
    staged = _stage(session, {n: target.c[n].type for n in names}, rows)
    statement = insert(session, target).from_select(names, select(*staged.c))
    compiled = conflict(statement).returning(*returning).compile(dialect=session.get_bind().dialect)
    cursor = driver_cursor(session)
    try:
        return cursor.execute(str(compiled), compiled.params).fetchall()
    finally:
        cursor.close()


def update_from_rows(
    session: Session,
    target: Table,
    rows: list[dict[str, Any]],
    types: dict[str, Any],
    where: Callable[[Table, Mapping[str, ColumnElement[Any]]], tuple[ColumnElement[bool], ...]],
    assign: Callable[[Mapping[str, ColumnElement[Any]]], dict[str, Any]],
) -> None:
    """One conditional UPDATE per row, set-based: PostgreSQL stages the rows by COPY
    and joins them in one statement; SQLite runs one executemany."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        staged = _stage(session, types, rows)
        given: Mapping[str, ColumnElement[Any]] = {n: staged.c[n] for n in types}
        session.execute(update(target).where(*where(target, given)).values(**assign(given)))
    else:
        given = {n: bindparam(n, type_=types[n]) for n in types}
        session.execute(update(target).where(*where(target, given)).values(**assign(given)), rows)
