"""The one place that knows SQLite and PostgreSQL spell an upsert the same way
through different modules."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, column, select, table, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


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


_staged = 0


def _stage(session: Session, types: Mapping[str, Any], rows: list[dict[str, Any]]) -> Any:
    """PostgreSQL: the rows COPYed into a temporary table, for set-based statements."""
    global _staged
    _staged += 1
    name = f"staged_{_staged}"
    dialect = session.get_bind().dialect
    columns = ", ".join(f"{n} {t.compile(dialect=dialect)}" for n, t in types.items())
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        cursor.execute(f"CREATE TEMP TABLE {name} ({columns}) ON COMMIT DROP")
        with cursor.copy(f"COPY {name} ({', '.join(types)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([row[n] for n in types])
    finally:
        cursor.close()
    return table(name, *(column(n, t) for n, t in types.items()))


def bulk_insert(
    session: Session,
    target: Table,
    rows: list[dict[str, Any]],
    conflict: Callable[[Any], Any],
) -> None:
    """Insert many rows with an ON CONFLICT clause (`conflict(insert) -> insert`):
    PostgreSQL stages them by COPY and inserts with one INSERT ... SELECT; SQLite
    runs one executemany."""
    if not rows:
        return
    if dialect_name(session) == "postgresql":
        names = list(rows[0])
        staged = _stage(session, {n: target.c[n].type for n in names}, rows)
        statement = insert(session, target).from_select(names, select(*staged.c))
        session.execute(conflict(statement))
    else:
        session.execute(conflict(insert(session, target)), rows)


def bulk_insert_returning(
    session: Session,
    target: Table,
    rows: list[dict[str, Any]],
    conflict: Callable[[Any], Any],
    returning: tuple[Any, ...],
) -> list[Any] | None:
    """PostgreSQL: `bulk_insert` with RETURNING, in one statement. None on SQLite,
    where the caller inserts and reads back instead."""
    if dialect_name(session) != "postgresql" or not rows:
        return None
    names = list(rows[0])
    staged = _stage(session, {n: target.c[n].type for n in names}, rows)
    statement = insert(session, target).from_select(names, select(*staged.c))
    return list(session.execute(conflict(statement).returning(*returning)))


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
