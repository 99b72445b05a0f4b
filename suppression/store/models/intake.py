"""One-click unsubscribes accepted but not yet folded into the event chain.

An RFC 8058 one-click answers 200 once its row here is committed: one INSERT, no
chain lock. The folder (services/consents/intake.py) turns rows into ordinary consent
events in batches and deletes each row in the transaction that folds it; until
then checks count the row as an opt-out. Like every table, no plaintext address:
the keyed index and the sealed address only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId


class OneClickIntake(Base):
    __tablename__ = "one_click_intake"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email_index: Mapped[bytes] = mapped_column(LargeBinary(32), index=True)
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    purpose: Mapped[str] = mapped_column(String(64))
    # When the person clicked: the folded event's occurred_at and recorded_at (the
    # request was durably recorded then), so a later event is never overridden.
    occurred_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(100))
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    campaign: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[dict[str, Any] | None] = mapped_column(JSON)
