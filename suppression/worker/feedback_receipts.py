"""A chore of the sync worker: forget feedback receipts older than a week."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from suppression.services.feedback.receipts import forget_old_receipts

logger = logging.getLogger(__name__)


def receipt_forgetter(
    sessions: sessionmaker[Session], clock: Callable[[], datetime]
) -> Callable[[], int]:
    def forget() -> int:
        with sessions() as session:
            forgotten = forget_old_receipts(session, clock())
            session.commit()
        if forgotten:
            logger.info("forgot %d feedback receipts older than a week", forgotten)
        return forgotten

    return forget
