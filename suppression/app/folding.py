"""Before a request reads or changes one person's state: fold their pending
one-click opt-outs (services/consents/intake.py) and commit, so that what follows
sees them. An edge step: it commits, in the request's session."""

from __future__ import annotations

from sqlalchemy.orm import Session

from suppression.app import current
from suppression.services.consents.intake import fold_intake, has_pending
from suppression.worker.one_click_folding import alarm_rule, count


def fold_for_address(session: Session, address: str) -> bool:
    """True if any one-click was pending for this address."""
    return fold_for_index(session, current.vault().index(address))


def fold_for_index(session: Session, index: bytes) -> bool:
    if not has_pending(session, index):
        return False
    settings = current.settings()
    outcome = fold_intake(
        session, current.vault(), settings.policy, alarm_rule(settings.links), index=index
    )
    session.commit()
    count(outcome)
    return True
