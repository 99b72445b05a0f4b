"""Feedback webhook receipts: which platform event ids (and signing nonces) were
received, so that a platform's retry, or a captured request sent again, does
nothing twice. Only a digest of each id is kept, for a week: platforms retry for
at most three days (SendGrid 72 hours; SNS and Postmark less)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base


class FeedbackReceipt(Base):
    __tablename__ = "feedback_receipts"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    # SHA-256 of "event:<id>" or "nonce:<token>": fixed size whatever the platform sends.
    key_digest: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(index=True)
