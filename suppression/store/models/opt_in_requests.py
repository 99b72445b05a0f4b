"""Double opt-in: a request to switch purposes back on, waiting for the mailbox to
confirm, and the confirmation mail's own outbox.

The preference page writes a row instead of an opt-in; the row is the mail to send
(written in the same transaction, so a relay that fails loses nothing) and holds
the evidence of the request step until the confirmation link is used or expires.
No plaintext address: the keyed index and the sealed address only; the request's
evidence (IP, user agent, notice version, the link's minter) is sealed too.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId


class OptInRequest(Base):
    __tablename__ = "opt_in_requests"
    __table_args__ = (
        Index("ix_opt_in_requests_email_index_requested_at", "email_index", "requested_at"),
        Index("ix_opt_in_requests_requested_at", "requested_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32))
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # The purposes asked for, sorted and comma-separated: the confirmation link names
    # the same set, and a second request for it within minutes sends no second mail.
    purposes: Mapped[str] = mapped_column(String(1000))
    requested_at: Mapped[datetime]  # whole seconds: the link carries it
    request_sealed: Mapped[bytes] = mapped_column(LargeBinary)  # sealed JSON evidence
    confirmed_at: Mapped[datetime | None]
    # The confirmation mail: sent, waiting for a retry, or given up (failed).
    mail_attempts: Mapped[int] = mapped_column(default=0)
    mail_available_at: Mapped[datetime | None]  # None: at once
    mail_claimed_until: Mapped[datetime | None]
    mail_sent_at: Mapped[datetime | None]
    mail_failed_at: Mapped[datetime | None]
    mail_error: Mapped[str | None] = mapped_column(String(200))
