"""Erasure (GDPR Art. 17, and the under-13 rule): personal data goes, the keyed
index stays so that every later check answers `erased`.

With destinations configured, erasure is two-phase: the subject is suppressed at
once and marked pending, removals are pushed, and the personal data is dropped
when every destination has confirmed (see `finish_pending_erasures`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from suppression.domain.vault import AddressVault
from suppression.errors import InvalidInput
from suppression.models import ConsentEvent, Subject
from suppression.services.dialects import insert
from suppression.services.events import EventContext, append_event
from suppression.services.opt_in_requests import forget_requests

ERASE_REASONS = ("request", "child", "retention", "other")
PENDING = "pending"
DONE = "done"

# Asked when erasing: how many removals were queued for destinations (0 = none
# configured), and later how many are still unconfirmed. Set by the destinations
# service; without it erasure is one-phase.
EnqueueRemovals = Callable[[Session, int], int]
PendingRemovals = Callable[[Session, int], int]


@dataclass(frozen=True)
class ErasureResult:
    subject_id: int
    status: str
    erased_at: datetime
    reason: str


def _tombstone(session: Session, vault: AddressVault, canonical: str) -> Subject:
    """The subject, or a new one holding only the keyed index (never seen before)."""
    index = vault.index(canonical)
    session.execute(
        insert(session, Subject)
        .values(email_index=index, email_sealed=None)
        .on_conflict_do_nothing(index_elements=["email_index"])
    )
    return session.scalars(select(Subject).where(Subject.email_index == index)).one()


def erase_subject(
    session: Session,
    vault: AddressVault,
    canonical: str,
    reason: str,
    ctx: EventContext,
    enqueue_removals: EnqueueRemovals | None = None,
) -> ErasureResult:
    if reason not in ERASE_REASONS:
        raise InvalidInput(
            f"unknown erasure reason {reason!r}",
            {"reason": [f"Must be one of: {', '.join(ERASE_REASONS)}."]},
        )
    subject = _tombstone(session, vault, canonical)
    if subject.erasure_status is None:
        erase_loaded_subject(session, subject, reason, ctx, enqueue_removals)
    return ErasureResult(
        subject.id, subject.erasure_status or DONE, subject.erased_at or ctx.recorded_at, reason
    )


def erase_loaded_subject(
    session: Session,
    subject: Subject,
    reason: str,
    ctx: EventContext,
    enqueue_removals: EnqueueRemovals | None = None,
) -> None:
    # The erasure event itself carries nothing personal.
    append_event(
        session,
        subject.id,
        "erased",
        EventContext(
            actor=ctx.actor,
            source=ctx.source,
            occurred_at=ctx.occurred_at,
            recorded_at=ctx.recorded_at,
        ),
    )
    subject.erased_at = ctx.recorded_at
    subject.erase_reason = reason
    # A pending double opt-in holds the sealed address and the request's evidence.
    forget_requests(session, bytes(subject.email_index))
    queued = enqueue_removals(session, subject.id) if enqueue_removals else 0
    if queued:
        subject.erasure_status = PENDING
    else:
        drop_personal_data(session, subject)
    session.flush()


def drop_personal_data(session: Session, subject: Subject) -> None:
    """Ciphertext, IPs, user agents, free evidence and location: gone. Suppression
    facts (states, blocks, the event chain's digests) stay."""
    session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.subject_id == subject.id)
        .values(ip=None, user_agent=None, evidence=None, country=None, personal_salt=None)
        .execution_options(synchronize_session=False)
    )
    subject.email_sealed = None
    subject.country = None
    subject.country_source = None
    subject.country_changed_at = None
    subject.last_purchase_at = None
    subject.last_inquiry_at = None
    subject.erasure_status = DONE


def finish_pending_erasures(session: Session, pending_removals: PendingRemovals) -> int:
    """Drop the personal data of pending erasures whose removals are all confirmed."""
    finished = 0
    for subject in session.scalars(select(Subject).where(Subject.erasure_status == PENDING)):
        if pending_removals(session, subject.id) == 0:
            drop_personal_data(session, subject)
            finished += 1
    session.flush()
    return finished
