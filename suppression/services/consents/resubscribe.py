"""The re-subscribe guard (the rule: domain/resubscribe.py) for one address, and
what a staff opt-in with evidence clears."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from suppression.domain import resubscribe as rule
from suppression.domain.addresses import sha256_hex
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus, EventAction
from suppression.domain.resubscribe import OptInAuthority, OptInConflict, overrides_opt_out
from suppression.domain.vault import AddressVault
from suppression.services.consents.events import EventContext, append_event
from suppression.store.models import Block, ConsentState, HashedSuppression, Subject

_MESSAGES = {
    OptInConflict.ERASED: (
        "This address was erased at the person's request and stays suppressed; "
        "only a staff opt-in with recorded evidence can restore it."
    ),
    OptInConflict.COMPLAINED: (
        "A spam complaint was recorded for this address; only a staff opt-in with "
        "recorded evidence can lift it."
    ),
    OptInConflict.OPTED_OUT: (
        "This address opted out; a sender or an import cannot opt it back in. The "
        "person can opt in on the preference page, or staff with recorded evidence."
    ),
    OptInConflict.HASHED_SUPPRESSION: (
        "This address is on an imported suppression list; a sender or an import cannot "
        "opt it back in."
    ),
}


def hashed_suppression(session: Session, canonical: str) -> HashedSuppression | None:
    return session.get(HashedSuppression, bytes.fromhex(sha256_hex(canonical)))


@dataclass(frozen=True)
class _StoredFacts:
    """The rule's facts about one address, each read when the rule asks."""

    session: Session
    subject: Subject | None
    canonical: str
    purpose: str
    occurred_at: datetime

    def erased(self) -> bool:
        return self.subject is not None and self.subject.erased_at is not None

    def complained(self) -> bool:
        return self.subject is not None and _has_active(
            self.session, self.subject.id, BlockKind.COMPLAINT
        )

    def opted_out_before(self) -> bool:
        if self.subject is None:
            return False
        opt_outs = dict(
            self.session.execute(
                select(ConsentState.purpose, ConsentState.changed_at).where(
                    ConsentState.subject_id == self.subject.id,
                    ConsentState.status == ConsentStatus.OPTED_OUT.value,
                )
            ).all()
        )
        return overrides_opt_out(self.purpose, self.occurred_at, opt_outs)

    def hashed_suppression(self) -> bool:
        return hashed_suppression(self.session, self.canonical) is not None


def opt_in_conflict(
    session: Session,
    subject: Subject | None,
    canonical: str,
    purpose: str,
    occurred_at: datetime,
    authority: OptInAuthority,
    has_evidence: bool,
) -> str | None:
    """Why this opt-in may not be recorded, or None when it may."""
    facts = _StoredFacts(session, subject, canonical, purpose, occurred_at)
    conflict = rule.opt_in_conflict(facts, authority, has_evidence)
    return None if conflict is None else _MESSAGES[conflict]


def _has_active(session: Session, subject_id: int, kind: BlockKind) -> bool:
    return (
        session.scalar(
            select(Block.is_active).where(Block.subject_id == subject_id, Block.kind == kind.value)
        )
        is True
    )


def clear_for_staff_opt_in(
    session: Session, vault: AddressVault, subject: Subject, canonical: str, ctx: EventContext
) -> None:
    """A staff opt-in with evidence restores an erased subject and lifts a complaint."""
    materialise_hashed_suppression(session, vault, canonical, ctx)
    if subject.erased_at is not None:
        # Lifted before the event is written: the restore keeps its evidence (an
        # erased subject's events keep none), and a later erase starts afresh.
        subject.erased_at = None
        subject.erase_reason = None
        subject.erasure_status = None
        subject.email_sealed = vault.seal(canonical)
        session.flush()
        append_event(session, vault, subject.id, EventAction.RESTORED, ctx)
    if _has_active(session, subject.id, BlockKind.COMPLAINT):
        event = append_event(session, vault, subject.id, EventAction.COMPLAINT_LIFTED, ctx)
        session.execute(
            update(Block)
            .where(Block.subject_id == subject.id, Block.kind == BlockKind.COMPLAINT.value)
            .values(
                is_active=False, changed_at=ctx.occurred_at, source=ctx.source, event_id=event.id
            )
            .execution_options(synchronize_session=False)
        )
    session.flush()


def materialise_hashed_suppression(
    session: Session, vault: AddressVault, canonical: str, ctx: EventContext
) -> None:
    """Before the person's (or staff's) opt-in: an imported hashed suppression of
    this address becomes an ordinary opt-out of all at its own time, so the newer
    opt-in can override it purpose by purpose, like any other opt-out."""
    hashed = hashed_suppression(session, canonical)
    if hashed is None:
        return
    from suppression.services.consents.recording import (
        record_consent,  # consents imports this module
    )

    record_consent(
        session,
        vault,
        canonical,
        ALL_PURPOSES,
        ConsentStatus.OPTED_OUT,
        EventContext(
            actor=ctx.actor,
            source=f"import:{hashed.source}"[:100],
            occurred_at=hashed.changed_at,
            recorded_at=ctx.recorded_at,
        ),
    )
    session.delete(hashed)
    session.flush()
