"""Verifying the event chain end to end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.chain import Break, ChainVerifier
from suppression.models import ConsentEvent
from suppression.services.events import chain_head, stored_links


@dataclass(frozen=True)
class ChainReport:
    checked: int
    total: int
    first_break: Break | None

    @property
    def intact(self) -> bool:
        return self.first_break is None


def verify_chain(session: Session, progress: Callable[[int], None] | None = None) -> ChainReport:
    total = session.scalar(select(func.count()).select_from(ConsentEvent)) or 0
    head_seq, head_hash = chain_head(session)
    verifier = ChainVerifier()
    for link in stored_links(session):
        if not verifier.feed(link):
            break
        if progress is not None:
            progress(1)
    first_break = verifier.finish(head_seq, head_hash)
    return ChainReport(checked=verifier.checked, total=total, first_break=first_break)
