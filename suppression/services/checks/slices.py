"""What a helper process is given to decide one slice of a check list, and what
the check needs of the helpers (worker/check_helpers.py runs them)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from suppression.domain.policy import PolicySettings

Answer = tuple[bytes, list[bytes | None] | None]  # a helper's decision codes and digests


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


@dataclass(frozen=True)
class SliceJob:
    connect: Connect
    index_key: bytes
    policy: PolicySettings
    purpose: str
    now: datetime
    raws: list[str | None]
    hints: list[str | None]
    with_sha256: bool
    pending: frozenset[bytes]  # one-click opt-outs not yet folded (services/consents/intake.py)


class SliceHelpers(Protocol):
    """A pool of helper processes, as the check uses it."""

    processes: int

    def submit(self, job: SliceJob) -> Future[Answer]: ...

    def reset(self) -> None: ...
