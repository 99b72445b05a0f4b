"""Data-protection rights: hashed suppressions from imports, purge and import records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId, utcnow


class HashedSuppression(Base):
    """A suppression known only by the unkeyed SHA-256 of the address (a list that
    was hashed elsewhere). It suppresses any address whose canonical hash matches."""

    __tablename__ = "hashed_suppressions"

    email_sha256: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))
    import_id: Mapped[int | None] = mapped_column(BigId)


class ImportRun(Base):
    """One import of a suppression list: who, when, and what came of it."""

    __tablename__ = "import_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    rows: Mapped[int] = mapped_column(default=0)
    imported: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)


class PurgeRun(Base):
    """One retention run (or dry run): when, which rule, and the counts."""

    __tablename__ = "purge_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    rule: Mapped[str] = mapped_column(String(40))
    dry_run: Mapped[bool] = mapped_column(Boolean)
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)
