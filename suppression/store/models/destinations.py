"""Destinations: the registry, the outbox the worker drains, what each
destination was last confirmed to hold per subject, and the push history.

No address and no platform hash is stored here: the worker opens the sealed
address in memory and hashes it per platform at push time.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId, utcnow


class Destination(Base):
    """One configured platform, its health, and a rotated OAuth token (sealed)."""

    __tablename__ = "destinations"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    enabled: Mapped[bool]
    # Fingerprint of what the destination writes to (audience ids...).
    targets: Mapped[str] = mapped_column(String(64))
    registered_at: Mapped[datetime] = mapped_column(default=utcnow)
    full_requested_at: Mapped[datetime | None]  # a full reconcile is due
    paused_until: Mapped[datetime | None]  # the platform asked us to wait (429)
    last_success_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_error_at: Mapped[datetime | None]
    credential_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    credential_seed: Mapped[str | None] = mapped_column(String(64))


class OutboxRow(Base):
    """A subject a destination must hear about; deleted once the platform confirmed.

    Claimed by a worker for a lease (claimed_by, claimed_until); after a failure
    it waits until available_at; after too many it is parked (failed_at). A push
    the platform accepted but processes later keeps its row with the request to
    follow (request_id ...) until the request's final status: available_at is
    then when to read the status next.
    """

    __tablename__ = "destination_outbox"
    __table_args__ = (
        Index("ix_destination_outbox_queue", "destination", "failed_at", "id"),
        Index("ix_destination_outbox_subject", "subject_id", "destination"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination: Mapped[str] = mapped_column(String(32), ForeignKey("destinations.name"))
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    available_at: Mapped[datetime | None]  # None: at once
    attempts: Mapped[int] = mapped_column(default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    request_id: Mapped[str | None] = mapped_column(String(1000))  # opaque, the connector's
    request_operation: Mapped[str | None] = mapped_column(String(16))  # suppress | restore
    request_reason: Mapped[str | None] = mapped_column(String(32))
    requested_at: Mapped[datetime | None]  # when the state pushed was read


class DestinationSubject(Base):
    """What a destination was last confirmed to hold for a subject."""

    __tablename__ = "destination_subjects"

    destination: Mapped[str] = mapped_column(
        String(32), ForeignKey("destinations.name"), primary_key=True
    )
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id"), primary_key=True)
    suppressed: Mapped[bool]
    reason: Mapped[str | None] = mapped_column(String(32))
    targets: Mapped[str] = mapped_column(String(64))
    observed_at: Mapped[datetime]  # when the state this rests on was read
    confirmed_at: Mapped[datetime]


class DestinationPush(Base):
    """Append-only: each suppression or restore a platform confirmed (export lists them)."""

    __tablename__ = "destination_pushes"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    destination: Mapped[str] = mapped_column(String(32), ForeignKey("destinations.name"))
    subject_id: Mapped[int] = mapped_column(BigId, ForeignKey("subjects.id"), index=True)
    operation: Mapped[str] = mapped_column(String(16))  # suppress | restore
    reason: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(16))  # confirmed | not_found | no_address
    pushed_at: Mapped[datetime]


class ReconcileProgress(Base):
    """A full reconcile underway: the resume point, and which worker runs it.

    Each chunk of subjects is queued (its rows leased to the reconciling worker,
    which pushes them at once) in the transaction that moves `after_subject_id`
    past it; the row goes when the reconcile ends. A worker that dies leaves the
    row behind: once its lease runs out, the next worker continues after the last
    chunk queued, and the drain pushes that chunk's rows."""

    __tablename__ = "reconcile_progress"

    destination: Mapped[str] = mapped_column(
        String(32), ForeignKey("destinations.name"), primary_key=True
    )
    after_subject_id: Mapped[int] = mapped_column(BigId, default=0)
    started_at: Mapped[datetime]
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
