"""Verifying the event chain end to end.

Sealed evidence is opened in memory to be digested as it was written; evidence
that no held key opens is a broken link (changed, or its key was dropped).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.chain import GENESIS, Break, ChainedFields, ChainVerifier, StoredLink
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.store.models import ChainHead, ConsentEvent


@dataclass(frozen=True)
class ChainReport:
    checked: int
    total: int
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def verify_chain(
    session: Session, vault: AddressVault, progress: Callable[[int], None] | None = None
) -> ChainReport:
    total = session.scalar(select(func.count()).select_from(ConsentEvent)) or 0
    head_seq, head_hash = chain_head(session)
    verifier = ChainVerifier()
    for link in stored_links(session, vault):
        if not verifier.feed(link):
            break
        if progress is not None:
            progress(1)
    first_break = verifier.finish(head_seq, head_hash)
    return ChainReport(checked=verifier.checked, total=total, first_break=first_break)


def stored_links(session: Session, vault: AddressVault, batch: int = 5000) -> Iterator[StoredLink]:
    """Every event in chain order, read in batches (the chain may be long)."""
    last = 0
    while True:
        events = session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.chain_seq > last)
            .order_by(ConsentEvent.chain_seq)
            .limit(batch)
        ).all()
        if not events:
            return
        for event in events:
            yield as_link(vault, event)
        last = events[-1].chain_seq
        session.expunge_all()


def as_link(vault: AddressVault, event: ConsentEvent) -> StoredLink:
    evidence, unopened = None, False
    if event.evidence_sealed is not None:
        try:
            evidence = vault.open_evidence(event.evidence_sealed)
        except SealError:
            unopened = True
    return StoredLink(
        event_id=event.id,
        fields=ChainedFields(
            seq=event.chain_seq,
            subject_id=event.subject_id,
            action=event.action,
            purpose=event.purpose,
            source=event.source,
            actor=event.actor,
            occurred_at=event.occurred_at,
            recorded_at=event.recorded_at,
            campaign=event.campaign,
            notice_version=event.notice_version,
        ),
        prev_hash=event.prev_hash,
        row_hash=event.row_hash,
        personal_digest=event.personal_digest,
        salt=event.personal_salt,
        ip=event.ip,
        user_agent=event.user_agent,
        evidence=evidence,
        country=event.country,
        evidence_unopened=unopened,
    )


def chain_head(session: Session) -> tuple[int, bytes]:
    head = session.get(ChainHead, 1)
    return (head.seq, head.hash) if head else (0, GENESIS)
