"""Full reconcile (`suppression sync --full`): recompute what a destination should
hold and queue the difference against what it was confirmed to hold.

Every subject whose address is still held is decided again; one that must be
suppressed and was not confirmed as suppressed (or was, to other targets) gets
an outbox row, and so does one confirmed as suppressed that is sendable now
(the worker restores it where an exclusion list exists, and otherwise just
forgets the old confirmation).

A chunk's rows are leased to the reconciling worker, which pushes them at once
with the facts the reconcile read (a new destination's million subjects are
read and decided once, not twice); a chunk queued while the platform fails is
left to the drain. `reconcile_progress` holds the resume point, moved past each
chunk in the transaction that queues it, and the worker running it: one killed
mid-reconcile is followed by another that continues after the last chunk queued.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from suppression.domain.destinations import Channel
from suppression.domain.policy import PolicySettings
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.destinations.enqueue import (
    enqueue_leased,
    enqueue_subjects,
    refresh_statistics,
)
from suppression.services.destinations.push_decisions import SubjectFacts, load_facts, push_reason
from suppression.services.destinations.rows import ClaimedRow
from suppression.store.advisory_locks import held_advisory_keys, hold_liveness, liveness_key
from suppression.store.dialects import execute_dml, insert
from suppression.store.models import Subject
from suppression.store.models.destinations import ReconcileProgress

CHUNK = 10_000  # subjects a transaction


@dataclass
class ReconcileReport:
    examined: int = 0
    enqueued: int = 0


class ReconcileTakenOver(Exception):
    """Another worker runs this reconcile now (this one's lease ran out)."""


def take_reconcile(
    session: Session,
    destination: str,
    worker: str,
    now: datetime,
    until: datetime,
    start: bool,
) -> int | None:
    """The subject id a reconcile of `destination` continues after, now run by
    `worker` until `until`; None when none is underway or another worker runs it.
    `start`: a new reconcile from the first subject (a full reconcile was asked)."""
    if start:
        hold_liveness(session, worker)
        statement = insert(session, ReconcileProgress).values(
            destination=destination,
            after_subject_id=0,
            started_at=now,
            claimed_by=worker,
            claimed_until=until,
        )
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["destination"],
                set_={
                    key: statement.excluded[key]
                    for key in ("after_subject_id", "started_at", "claimed_by", "claimed_until")
                },
            )
        )
        return 0
    progress = session.get(ReconcileProgress, destination, with_for_update=True)
    if progress is None:
        return None
    held = progress.claimed_until is not None and progress.claimed_until >= now
    if held and progress.claimed_by not in (None, worker):
        # PostgreSQL: a worker whose connections are gone (killed) holds nothing.
        keys = held_advisory_keys(session)
        if keys is None or liveness_key(progress.claimed_by or "") in keys:
            return None
    # Held only once taken: a pooled connection stands for one worker at a time.
    hold_liveness(session, worker)
    progress.claimed_by = worker
    progress.claimed_until = until
    session.flush()
    return progress.after_subject_id


def _advance(session: Session, destination: str, worker: str, after: int, until: datetime) -> None:
    moved = execute_dml(
        session,
        update(ReconcileProgress)
        .where(ReconcileProgress.destination == destination, ReconcileProgress.claimed_by == worker)
        .values(after_subject_id=after, claimed_until=until),
    )
    if not moved.rowcount:
        raise ReconcileTakenOver(destination)


@dataclass
class ReconciledChunk:
    """Rows a chunk queued leased to the worker (empty when left to the drain),
    and the facts the decisions rested on, for the push."""

    rows: list[ClaimedRow]
    facts: dict[int, SubjectFacts]


@dataclass
class Reconcile:
    """One full reconcile of a destination by one worker, a chunk of subjects at
    a time, from `last_id` on (the resume point `take_reconcile` answered).

    Each `step` is a unit of work for one short transaction: the edge commits
    after each, so the reconcile is safe to interrupt and resume."""

    vault: AddressVault
    policy: PolicySettings
    destination: str
    channel: Channel
    purpose: str
    targets: str
    worker: str
    chunk: int = CHUNK
    report: ReconcileReport = field(default_factory=ReconcileReport)
    last_id: int = 0
    analysed_at: int = 0  # rows enqueued when the outbox was last analysed

    def step(
        self,
        session: Session,
        clock: Callable[[], datetime],
        until: datetime,
        lease_rows: bool = True,
    ) -> ReconciledChunk | None:
        """Queue the next chunk of subjects (flushed), its rows leased to this worker
        until `until` (unless not `lease_rows`: left to the drain), and keep the
        reconcile until then; None once no subject is left, and the reconcile is
        over. Raises ReconcileTakenOver when another worker runs it now."""
        hold_liveness(session, self.worker)
        ids = list(
            session.scalars(
                select(Subject.id)
                .where(Subject.id > self.last_id, Subject.email_sealed.is_not(None))
                .order_by(Subject.id)
                .limit(self.chunk)
            )
        )
        if not ids:
            self._finish(session)
            return None
        now = clock()
        facts = load_facts(session, ids, self.purpose, self.destination)
        wanted = []
        for subject_id, fact in facts.items():
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
        rows: list[ClaimedRow] = []
        if not lease_rows:
            added = enqueue_subjects(session, self.destination, wanted, now)
        else:
            leased = enqueue_leased(session, self.destination, wanted, now, self.worker, until)
            rows = [ClaimedRow(row_id, subject_id, 0) for row_id, subject_id in leased]
            added = len(rows)
        report = self.report
        report.examined += len(ids)
        report.enqueued += added
        if report.enqueued >= 2 * self.analysed_at + self.chunk:
            # The outbox grew past what its statistics say: at 2k, 6k, 14k... rows.
            refresh_statistics(session)
            self.analysed_at = report.enqueued
        self.last_id = ids[-1]
        _advance(session, self.destination, self.worker, self.last_id, until)
        return ReconciledChunk(rows, {row.subject_id: facts[row.subject_id] for row in rows})

    def _finish(self, session: Session) -> None:
        finished = execute_dml(
            session,
            delete(ReconcileProgress).where(
                ReconcileProgress.destination == self.destination,
                ReconcileProgress.claimed_by == self.worker,
            ),
        )
        if not finished.rowcount:
            raise ReconcileTakenOver(self.destination)
