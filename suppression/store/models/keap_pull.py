"""Where the last pull of Keap's non-marketable addresses ended."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from suppression.store.schema import Base


class KeapPullCursor(Base):
    """One row per Keap account pulled ("keap"): the high-water mark is the newest
    Keap `create_time` of a pull that read every page down to the previous mark."""

    __tablename__ = "keap_pull_cursors"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    high_water_at: Mapped[datetime | None]
    pulled_at: Mapped[datetime | None]  # when the last pull started
    completed_at: Mapped[datetime | None]  # when a pull last read every page it needed
    last_error: Mapped[str | None] = mapped_column(String(500))
