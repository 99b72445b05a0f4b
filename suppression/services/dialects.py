"""The one place that knows SQLite and PostgreSQL spell an upsert the same way
through different modules."""

from __future__ import annotations

from typing import Any

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
