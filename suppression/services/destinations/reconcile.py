"""Full reconcile (`suppression sync --full`): recompute what a destination should
hold and queue the difference against what it was confirmed to hold.

Every subject whose address is still held is decided again; one that must be
suppressed and was not confirmed as suppressed (or was, to other targets) gets
an outbox row, and so does one confirmed as suppressed that is sendable now
(the worker restores it where an exclusion list exists, and otherwise just
forgets the old confirmation). The worker then pushes the rows as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.domain.destinations import Channel
from suppression.domain.policy import PolicySettings
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.destinations.enqueue import enqueue_subjects, refresh_statistics
from suppression.services.destinations.push_decisions import load_facts, push_reason
from suppression.store.models import Subject

CHUNK = 10_000  # subjects a transaction


@dataclass
class ReconcileReport:
    examined: int = 0
    enqueued: int = 0


@dataclass
class Reconcile:
    """One full reconcile of a destination, a chunk of subjects at a time.

    Each `step` is a unit of work for one short transaction: the edge commits
    after each, so the reconcile is safe to interrupt and rerun."""

    vault: AddressVault
    policy: PolicySettings
    destination: str
    channel: Channel
    purpose: str
    targets: str
    chunk: int = CHUNK
    report: ReconcileReport = field(default_factory=ReconcileReport)
    last_id: int = 0
    analysed_at: int = 0  # rows enqueued when the outbox was last analysed

    def step(self, session: Session, clock: Callable[[], datetime]) -> bool:
        """Queue the next chunk of subjects (flushed); False once none is left."""
        ids = list(
            session.scalars(
                select(Subject.id)
                .where(Subject.id > self.last_id, Subject.email_sealed.is_not(None))
                .order_by(Subject.id)
                .limit(self.chunk)
            )
        )
        if not ids:
            return False
        now = clock()
        wanted = []
        for subject_id, fact in load_facts(session, ids, self.purpose, self.destination).items():
            canonical = None
            if fact.needs_domain and fact.sealed is not None:
                try:
                    canonical = self.vault.open(fact.sealed)
                except SealError:
                    continue
            reason, _decision = push_reason(fact, self.channel, canonical, self.policy, now)
            held = fact.held
            if reason is not None:
                if not (held and held.suppressed and held.targets == self.targets):
                    wanted.append(subject_id)
            elif held and held.suppressed:
                wanted.append(subject_id)
        report = self.report
        report.examined += len(ids)
        report.enqueued += enqueue_subjects(session, self.destination, wanted, now)
        if report.enqueued >= 2 * self.analysed_at + self.chunk:
            # The outbox grew past what its statistics say: at 2k, 6k, 14k... rows.
            refresh_statistics(session)
            self.analysed_at = report.enqueued
        self.last_id = ids[-1]
        return True
