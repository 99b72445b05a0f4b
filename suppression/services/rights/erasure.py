"""Erasure (GDPR Art. 17, and the under-13 rule): personal data goes, the keyed
index stays so that every later check answers `erased`.

With destinations configured, erasure is two-phase: the subject is suppressed at
once and marked pending, removals are pushed, and the personal data is dropped
when every destination has confirmed (see `finish_pending_erasures`).

What is written about the subject afterwards keeps no personal field
(services/consents/events.py, services/consents/recording.py); a repeated erase scrubs again all the
same. An imported unkeyed SHA-256 of the address goes at once: the keyed index
keeps the person suppressed, and that hash is the address to anyone who guesses it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from suppression.domain.addresses import sha256_hex
from suppression.domain.errors import InvalidInput
from suppression.domain.policy import EventAction
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.consents.events import EventContext, append_event
from suppression.services.links.opt_in_requests import forget_requests
from suppression.store.dialects import insert
from suppression.store.models import ConsentEvent, HashedSuppression, Subject

logger = logging.getLogger(__name__)

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
        erase_loaded_subject(session, vault, subject, reason, ctx, enqueue_removals, canonical)
    else:
        # A repeat answers as the first did, and scrubs again whatever got in
        # since (written by an older version, or restored from a backup).
        forget_unkeyed_hash(session, canonical)
        if subject.erasure_status == DONE:
            drop_personal_data(session, subject)
        session.flush()
    return ErasureResult(
        subject.id, subject.erasure_status or DONE, subject.erased_at or ctx.recorded_at, reason
    )


def erase_loaded_subject(
    session: Session,
    vault: AddressVault,
    subject: Subject,
    reason: str,
    ctx: EventContext,
    enqueue_removals: EnqueueRemovals | None = None,
    canonical: str | None = None,
) -> None:
    """Erase a subject already loaded (the staff page, retention). `canonical`,
    when the caller has it, else the held sealed address, finds an imported hash."""
    address = canonical or _held_address(vault, subject)
    if address is not None:
        forget_unkeyed_hash(session, address)
    # The erasure event itself carries nothing personal.
    append_event(
        session,
        vault,
        subject.id,
        EventAction.ERASED,
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


def _held_address(vault: AddressVault, subject: Subject) -> str | None:
    if subject.email_sealed is None:
        return None
    try:
        return vault.open(subject.email_sealed)
    except SealError:
        logger.warning(
            "subject %d: its sealed address opens with no held key, so an imported "
            "hash of it cannot be found",
            subject.id,
        )
        return None


def forget_unkeyed_hash(session: Session, canonical: str) -> None:
    """Delete an imported `email_sha256` suppression of this address."""
    session.execute(
        delete(HashedSuppression)
        .where(HashedSuppression.email_sha256 == bytes.fromhex(sha256_hex(canonical)))
        .execution_options(synchronize_session=False)
    )


def drop_personal_data(session: Session, subject: Subject) -> None:
    """Ciphertext, IPs, user agents, free evidence and location: gone. Suppression
    facts (states, blocks, the event chain's digests) stay."""
    session.execute(
        update(ConsentEvent)
        .where(ConsentEvent.subject_id == subject.id)
        .values(ip=None, user_agent=None, evidence_sealed=None, country=None, personal_salt=None)
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
