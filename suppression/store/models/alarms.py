"""Mass-unsubscribe alarms: many unsubscribes from one domain and campaign within
minutes (a mail scanner that learned to POST). Only domains, never addresses."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base, BigId


class UnsubscribeAlarm(Base):
    """One burst: raised when the count first passed the threshold, then kept up to
    date while unsubscribes from the same domain and campaign go on arriving."""

    __tablename__ = "unsubscribe_alarms"
    __table_args__ = (
        Index("ix_unsubscribe_alarms_domain_campaign", "domain", "campaign", "last_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    domain: Mapped[str] = mapped_column(String(253))
    campaign: Mapped[str | None] = mapped_column(String(200))
    count: Mapped[int]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
    raised_at: Mapped[datetime] = mapped_column(index=True)


class UnsubscribeTally(Base):
    """Unsubscribes per domain, campaign and minute: the sliding window the alarm
    counts in. Rows older than the window are deleted as new ones arrive."""

    __tablename__ = "unsubscribe_tallies"

    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)  # "" for none
    minute_at: Mapped[datetime] = mapped_column(primary_key=True, index=True)
    count: Mapped[int]
    first_at: Mapped[datetime]
    last_at: Mapped[datetime]
