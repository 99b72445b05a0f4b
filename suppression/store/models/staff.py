"""Staff accounts for the /admin/ pages, their sign-in attempts, and the access
log: who looked at which subject, when and why. No address is stored here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.models.core import ConsentEvent
from suppression.store.schema import Base, BigId, utcnow


class StaffUser(Base):
    """A person who signs in to the staff pages. Only a password hash is kept."""

    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    password_changed_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_sign_in_at: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    # Every session cookie carries the generation it was signed in under; sign-out,
    # a new password and disabling raise it, so every copy of an older cookie is
    # refused on its next request (a signed cookie cannot be revoked otherwise).
    session_generation: Mapped[int] = mapped_column(default=0, server_default="0")


class SignInAttempt(Base):
    """One sign-in attempt, kept for throttling (per username and per IP address)."""

    __tablename__ = "staff_sign_in_attempts"
    __table_args__ = (
        Index("ix_staff_sign_in_attempts_username_at", "username", "attempted_at"),
        Index("ix_staff_sign_in_attempts_ip_at", "ip", "attempted_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(45))
    succeeded: Mapped[bool]
    attempted_at: Mapped[datetime]


class AccessLogEntry(Base):
    """One look at a subject's data, through the pages or the API, or one check
    of a whole send list (the staff page or `suppression check`).

    `subject_id` is empty when the address looked up is not stored: the search
    itself is still on record, without the address. A list check names no
    subject: it keeps the purpose checked and how many rows the list had.
    """

    __tablename__ = "access_log"
    __table_args__ = (
        Index("ix_access_log_subject_at", "subject_id", "occurred_at"),
        Index("ix_access_log_occurred_at", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    occurred_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(8))  # page | api | cli
    action: Mapped[str] = mapped_column(String(16))  # lookup | view | export | list_check
    subject_id: Mapped[int | None] = mapped_column(ForeignKey("subjects.id"))
    reason: Mapped[str | None] = mapped_column(String(500))
    ip: Mapped[str | None] = mapped_column(String(45))
    purpose: Mapped[str | None] = mapped_column(String(64))  # a list check's
    row_count: Mapped[int | None] = mapped_column(BigInteger)  # a list check's


# The dashboard counts opt-outs per day over a recent window: without this index
# that count reads every event ever recorded.
Index(
    "ix_consent_events_action_occurred_at",
    ConsentEvent.__table__.c.action,
    ConsentEvent.__table__.c.occurred_at,
)
