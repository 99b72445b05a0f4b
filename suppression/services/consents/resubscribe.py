"""The re-subscribe guard.

An erased, complained or opted-out address is never turned back to sendable by
an import, a batch call or a sender key. Only the person's own opt-in (the
preference page) or a staff opt-in with recorded evidence can; and the person's
own opt-in never overrides an erasure or a complaint.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from suppression.domain.addresses import sha256_hex
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus
from suppression.domain.vault import AddressVault
from suppression.services.consents.events import EventContext, append_event
from suppression.store.models import Block, ConsentState, HashedSuppression, Subject


class OptInAuthority(StrEnum):
    SUBJECT = "subject"  # the person, on the preference page
    STAFF = "staff"  # staff (a staff or admin key, or the staff pages)
    SENDER = "sender"  # a platform, an import, a batch


def hashed_suppression(session: Session, canonical: str) -> HashedSuppression | None:
    return session.get(HashedSuppression, bytes.fromhex(sha256_hex(canonical)))


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
    staff_ok = authority == OptInAuthority.STAFF and has_evidence
    if subject is not None and subject.erased_at is not None and not staff_ok:
        return (
            "This address was erased at the person's request and stays suppressed; "
            "only a staff opt-in with recorded evidence can restore it."
        )
    if (
        subject is not None
        and _has_active(session, subject.id, BlockKind.COMPLAINT)
        and not staff_ok
    ):
        return (
            "A spam complaint was recorded for this address; only a staff opt-in with "
            "recorded evidence can lift it."
        )
    if authority == OptInAuthority.SUBJECT or staff_ok:
        return None
    if subject is not None and _opted_out_before(session, subject.id, purpose, occurred_at):
        return (
            "This address opted out; a sender or an import cannot opt it back in. The "
            "person can opt in on the preference page, or staff with recorded evidence."
        )
    if hashed_suppression(session, canonical) is not None:
        return (
            "This address is on an imported suppression list; a sender or an import cannot "
            "opt it back in."
        )
    return None


def _has_active(session: Session, subject_id: int, kind: BlockKind) -> bool:
    return (
        session.scalar(
            select(Block.is_active).where(Block.subject_id == subject_id, Block.kind == kind.value)
        )
        is True
    )


def _opted_out_before(session: Session, subject_id: int, purpose: str, at: datetime) -> bool:
    """An opt-out this opt-in would override (an older-dated opt-in changes nothing)."""
    purposes = [ALL_PURPOSES] if purpose == ALL_PURPOSES else [purpose, ALL_PURPOSES]
    query = select(ConsentState).where(
        ConsentState.subject_id == subject_id,
        ConsentState.status == ConsentStatus.OPTED_OUT.value,
        ConsentState.changed_at <= at,
    )
    if purpose != ALL_PURPOSES:
        query = query.where(ConsentState.purpose.in_(purposes))
    return session.scalars(query.limit(1)).first() is not None


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
        append_event(session, vault, subject.id, "restored", ctx)
    if _has_active(session, subject.id, BlockKind.COMPLAINT):
        event = append_event(session, vault, subject.id, "complaint_lifted", ctx)
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
