"""Finding and creating subjects, and reading one subject's current state."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.domain.addresses import domain_of
from suppression.domain.jurisdictions import CountrySource, Jurisdiction, resolve_jurisdiction
from suppression.domain.policy import (
    ALL_PURPOSES,
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    Decision,
    PolicySettings,
    SubjectState,
    decide,
    effective_consent,
)
from suppression.domain.vault import AddressVault
from suppression.store.dialects import insert
from suppression.store.models import Block, ConsentState, Subject


def find_subject(session: Session, vault: AddressVault, canonical: str) -> Subject | None:
    return session.scalars(
        select(Subject).where(Subject.email_index == vault.index(canonical))
    ).one_or_none()


def ensure_subject(session: Session, vault: AddressVault, canonical: str) -> Subject:
    """The subject for this address, created if new; two racing callers get one row."""
    index = vault.index(canonical)
    statement = (
        insert(session, Subject)
        .values(email_index=index, email_sealed=vault.seal(canonical))
        .on_conflict_do_nothing(index_elements=["email_index"])
    )
    session.execute(statement)
    return session.scalars(select(Subject).where(Subject.email_index == index)).one()


def ensure_subjects(
    session: Session, sealed: Mapping[bytes, bytes]
) -> dict[bytes, tuple[int, bool]]:
    """Keyed index -> (subject id, erased) for many addresses (keyed index ->
    sealed address), creating the subjects never seen."""

    def load(indexes: list[bytes]) -> dict[bytes, tuple[int, bool]]:
        found = session.execute(
            select(Subject.email_index, Subject.id, Subject.erased_at).where(
                Subject.email_index.in_(indexes)
            )
        )
        return {bytes(idx): (sid, erased_at is not None) for idx, sid, erased_at in found}

    subjects = load(list(sealed))
    # Sorted: two writers creating the same subjects take their index locks in one
    # order, so neither waits on the other in a cycle (later writes are ordered by
    # the chain-head lock).
    missing = sorted(idx for idx in sealed if idx not in subjects)
    if missing:
        # Another writer may create the same subject: the unique index keeps one,
        # and both read it back.
        session.execute(
            insert(session, Subject).on_conflict_do_nothing(index_elements=["email_index"]),
            [{"email_index": idx, "email_sealed": sealed[idx]} for idx in missing],
        )
        subjects.update(load(missing))
    return subjects


def stored_jurisdiction(subject: Subject | None) -> Jurisdiction:
    if subject is None or subject.country_source is None:
        return Jurisdiction(None, None)
    return Jurisdiction(subject.country, CountrySource(subject.country_source))


@dataclass(frozen=True)
class ConsentView:
    status: str
    changed_at: datetime
    source: str


@dataclass(frozen=True)
class BlockView:
    kind: str
    since: datetime
    source: str


@dataclass(frozen=True)
class SubjectView:
    """A subject's state as lookup and consent writes answer it (without events)."""

    email: str
    subject_id: int | None
    jurisdiction: Jurisdiction
    consents: dict[str, ConsentView]
    blocks: list[BlockView]
    decisions: dict[str, Decision]
    erased_at: datetime | None


def view_subject(
    session: Session,
    canonical: str,
    subject: Subject | None,
    settings: PolicySettings,
    now: datetime,
) -> SubjectView:
    consents: dict[str, ConsentView] = {}
    blocks: list[BlockView] = []
    if subject is not None:
        for row in session.scalars(
            select(ConsentState).where(ConsentState.subject_id == subject.id)
        ):
            consents[row.purpose] = ConsentView(row.status, row.changed_at, row.source)
        for block in session.scalars(
            select(Block)
            .where(Block.subject_id == subject.id, Block.is_active.is_(True))
            .order_by(Block.kind)
        ):
            blocks.append(BlockView(block.kind, block.changed_at, block.source))
    jurisdiction = resolve_jurisdiction(stored_jurisdiction(subject), None, domain_of(canonical))
    decisions = {}
    for purpose in settings.purposes:
        state = subject_state(subject, consents, blocks, purpose)
        decisions[purpose] = decide(state, jurisdiction, settings, now)
    return SubjectView(
        email=canonical,
        subject_id=subject.id if subject else None,
        jurisdiction=jurisdiction,
        consents=consents,
        blocks=blocks,
        decisions=decisions,
        erased_at=subject.erased_at if subject else None,
    )


def subject_state(
    subject: Subject | None,
    consents: dict[str, ConsentView],
    blocks: list[BlockView],
    purpose: str,
) -> SubjectState:
    def record(name: str) -> ConsentRecord | None:
        view = consents.get(name)
        return ConsentRecord(ConsentStatus(view.status), view.changed_at) if view else None

    return SubjectState(
        erased=bool(subject and subject.erased_at),
        blocks=frozenset(BlockKind(b.kind) for b in blocks),
        consent=effective_consent(record(purpose), record(ALL_PURPOSES)),
        last_purchase_at=subject.last_purchase_at if subject else None,
        last_inquiry_at=subject.last_inquiry_at if subject else None,
    )
