"""A DB-API connection of a process's own, for the check helper processes: they
hold no engine and import no SQLAlchemy, only what opening the connection needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Connect:
    """How a helper opens its own connection: the DB-API module's connect() arguments
    as SQLAlchemy's dialect derives them from the service's DATABASE_URL."""

    dialect: str  # "sqlite" or "postgresql"
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]

    @classmethod
    def from_engine(cls, engine: Any) -> Connect | None:
        """None where a second process cannot reach the database (in-memory SQLite)."""
        args, kwargs = engine.dialect.create_connect_args(engine.url)
        plain = tuple(
            (name, value)
            for name, value in sorted(kwargs.items())
            if isinstance(value, str | int | float | bool)  # not psycopg's adapters map
        )
        if engine.dialect.name == "sqlite":
            target = str(args[0]) if args else ""
            if target in ("", ":memory:") or "mode=memory" in target:
                return None
            return cls("sqlite", (target,), plain)
        if engine.dialect.name == "postgresql":
            return cls("postgresql", tuple(args), plain)
        return None

    def open(self) -> Any:
        if self.dialect == "sqlite":
            import sqlite3

            connection = sqlite3.connect(*self.args, **dict(self.kwargs))
            connection.execute("PRAGMA busy_timeout=30000")
            return connection
        import psycopg

        return psycopg.connect(*self.args, **dict(self.kwargs))
