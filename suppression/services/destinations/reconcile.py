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
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from suppression.domain.destinations import Channel
from suppression.domain.policy import PolicySettings
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.destinations.outbox import enqueue_subjects, refresh_statistics
from suppression.services.destinations.push_decisions import load_facts, push_reason
from suppression.store.models import Subject

CHUNK = 10_000  # subjects a transaction


@dataclass
class ReconcileReport:
    examined: int = 0
    enqueued: int = 0


def reconcile(
    sessions: sessionmaker[Session],
    vault: AddressVault,
    policy: PolicySettings,
    destination: str,
    channel: Channel,
    purpose: str,
    targets: str,
    clock: Callable[[], datetime],
    chunk: int = CHUNK,
) -> ReconcileReport:
    """One short transaction per chunk of subjects; safe to interrupt and rerun."""
    report = ReconcileReport()
    last_id = 0
    analysed_at = 0  # rows enqueued when the outbox was last analysed
    while True:
        with sessions() as session:
            ids = list(
                session.scalars(
                    select(Subject.id)
                    .where(Subject.id > last_id, Subject.email_sealed.is_not(None))
                    .order_by(Subject.id)
                    .limit(chunk)
                )
            )
            if not ids:
                return report
            now = clock()
            wanted = []
            for subject_id, fact in load_facts(session, ids, purpose, destination).items():
                canonical = None
                if fact.needs_domain and fact.sealed is not None:
                    try:
                        canonical = vault.open(fact.sealed)
                    except SealError:
                        continue
                reason, _decision = push_reason(fact, channel, canonical, policy, now)
                held = fact.held
                if reason is not None:
                    if not (held and held.suppressed and held.targets == targets):
                        wanted.append(subject_id)
                elif held and held.suppressed:
                    wanted.append(subject_id)
            report.examined += len(ids)
            report.enqueued += enqueue_subjects(session, destination, wanted, now)
            if report.enqueued >= 2 * analysed_at + chunk:
                # The outbox grew past what its statistics say: at 2k, 6k, 14k... rows.
                refresh_statistics(session)
                analysed_at = report.enqueued
            session.commit()
            last_id = ids[-1]
