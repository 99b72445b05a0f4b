"""Typed SQLAlchemy 2.0 mappings. No plaintext address is stored in any table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, LargeBinary, SmallInteger, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId, utcnow


class Subject(Base):
    """One address: its keyed index, its sealed form, and where it lives."""

    __tablename__ = "subjects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    email_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)  # None once erased
    country: Mapped[str | None] = mapped_column(String(2))
    # CountrySource rank: 1 inferred, 2 hint, 3 declared (higher wins).
    country_source: Mapped[int | None] = mapped_column(SmallInteger)
    country_changed_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    last_inquiry_at: Mapped[datetime | None]
    # The newest event that came from the person or a transaction: retention counts from it.
    last_communication_at: Mapped[datetime | None]
    # Erasure: suppressed as `erased` from erased_at on; the personal data goes when
    # every destination has confirmed the removal (status pending -> done).
    erased_at: Mapped[datetime | None]
    erase_reason: Mapped[str | None] = mapped_column(String(40))
    erasure_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ConsentEvent(Base):
    """Append-only evidence of every change: never updated, never deleted by hand."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), index=True)
    action: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(100))
    actor: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    campaign: Mapped[str | None] = mapped_column(String(200))
    notice_version: Mapped[str | None] = mapped_column(String(100))
    country: Mapped[str | None] = mapped_column(String(2))
    # The free evidence's canonical JSON, sealed like the address (AddressVault.
    # seal_evidence): it often holds the address itself (a reply, a form's text).
    evidence_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The tamper-evident chain (domain/chain.py). Erasure clears ip, user_agent,
    # evidence and the salt; the digest stays, so the chain still verifies.
    chain_seq: Mapped[int] = mapped_column(BigId, unique=True)
    prev_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    row_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    personal_digest: Mapped[bytes] = mapped_column(LargeBinary(32))
    personal_salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))


class ChainHead(Base):
    """The newest link of the event chain: one row, locked while an event is appended."""

    __tablename__ = "chain_head"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class ConsentState(Base):
    """Current consent per subject and purpose (`all` included), from the newest event."""

    __tablename__ = "consent_states"

    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[int] = mapped_column(BigId)


class Block(Base):
    """Current state of one block kind for a subject, from the newest event of it."""

    __tablename__ = "blocks"
    __table_args__ = (Index("ix_blocks_active_subject", "subject_id", "is_active"),)

    subject_id: Mapped[int] = mapped_column(ForeignKey("subjects.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    is_active: Mapped[bool]
    changed_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))
    event_id: Mapped[int] = mapped_column(BigId)


class DecisionInputs(Base):
    """What a check reads of one subject, in one narrow row found by its keyed index.

    Defined by the view `decision_inputs_projection` (migration 0013) over
    `subjects`, `consent_states` and `blocks`, and copied from it by the database's
    own triggers in the same statement as every write to them, so no writer can
    forget it (the importer copies its rows from the view itself:
    store/decision_inputs.py). A check then costs one index lookup per address
    instead of four (services/checks/decisions.py). On SQLite the row lives in
    the primary key's B-tree (WITHOUT ROWID, migration 0016): one search, not two.
    """

    __tablename__ = "decision_inputs"
    __table_args__ = {"sqlite_with_rowid": False}

    email_index: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    subject_id: Mapped[int] = mapped_column(
        ForeignKey("subjects.id", ondelete="CASCADE"), unique=True
    )
    country: Mapped[str | None] = mapped_column(String(2))
    country_source: Mapped[int | None] = mapped_column(SmallInteger)
    erased_at: Mapped[datetime | None]
    last_purchase_at: Mapped[datetime | None]
    last_inquiry_at: Mapped[datetime | None]
    # Active block kinds, sorted, comma-separated; None when there is none.
    blocks: Mapped[str | None] = mapped_column(String(100))
    # {purpose: [status, changed_at]} for every consent_states row of the subject.
    consents: Mapped[dict[str, Any] | None] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql")
    )


class ApiKey(Base):
    """Machine clients. Only a SHA-256 of the key is kept (keys are 256-bit random)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
