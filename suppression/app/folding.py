"""Before a request reads or changes one person's state: fold their pending
one-click opt-outs (services/consents/intake.py) in the request's session. The
view commits what was folded, so that what follows sees it, and then counts it:

    if folded := folding.fold_for_address(session, address):
        session.commit()
        folding.count(folded)
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from suppression.app import current
from suppression.services.consents.intake import FoldOutcome, fold_intake, has_pending
from suppression.worker.one_click_folding import alarm_rule, count

__all__ = ["count", "fold_for_address", "fold_for_index"]


def fold_for_address(session: Session, address: str) -> FoldOutcome | None:
    """What was folded; None if no one-click was pending for this address."""
    return fold_for_index(session, current.vault().index(address))


def fold_for_index(session: Session, index: bytes) -> FoldOutcome | None:
    if not has_pending(session, index):
        return None
    settings = current.settings()
    return fold_intake(
        session, current.vault(), settings.policy, alarm_rule(settings.links), index=index
    )
