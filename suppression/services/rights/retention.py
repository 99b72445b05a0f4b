"""Retention (the policy's storage limits, GDPR Art. 5(1)(e)).

- `non_customer_2y`: someone who never bought anything and with whom there was
  no communication for 2 years loses their marketing data;
- `everyone_7y`: anyone 7 years after the last communication.

Either way the subject is erased to its keyed index (reason `retention`): the
address, evidence, IPs and location go, the suppression facts stay, and checks
answer `erased`, so a purged address is never mailed from a stale list.
"Last communication" is the newest event from the person or a transaction with
them (opt-in, opt-out, preference change, purchase, inquiry, complaint, rights
requests), or the first record of the subject when there is none.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from suppression.domain.vault import AddressVault
from suppression.services.consents.events import EventContext
from suppression.services.destinations.enqueue import enqueue_removals
from suppression.services.rights.erasure import erase_loaded_subject
from suppression.store.models import PurgeRun, Subject

BATCH = 500


@dataclass(frozen=True)
class RetentionRule:
    name: str
    period: timedelta
    customers_too: bool

    def candidates(self, now: datetime) -> Select[int]:
        last_communication = func.coalesce(Subject.last_communication_at, Subject.created_at)
        query = select(Subject.id).where(
            Subject.erased_at.is_(None), last_communication < now - self.period
        )
        if not self.customers_too:
            query = query.where(Subject.last_purchase_at.is_(None))
        return query.order_by(Subject.id)


def retention_rules(non_customer_days: int, everyone_days: int) -> list[RetentionRule]:
    return [
        RetentionRule("non_customer_2y", timedelta(days=non_customer_days), customers_too=False),
        RetentionRule("everyone_7y", timedelta(days=everyone_days), customers_too=True),
    ]


@dataclass(frozen=True)
class PurgeStep:
    """What one step of a purge flushed: a chunk of `erased` subjects, or (erased 0)
    the finished record of a rule. The caller commits at each step, so a killed
    purge loses at most the chunk in hand."""

    run: PurgeRun
    erased: int

    @property
    def finished(self) -> bool:
        return self.run.finished_at is not None


def purge(
    session: Session,
    vault: AddressVault,
    rules: list[RetentionRule],
    now: datetime,
    dry_run: bool,
) -> Iterator[PurgeStep]:
    """Apply each rule in turn (or count what it would do); one PurgeRun per rule.
    Yields after each flushed chunk of BATCH subjects and after each rule's record."""
    for rule in rules:
        run = PurgeRun(started_at=now, rule=rule.name, dry_run=dry_run, counts={})
        session.add(run)
        session.flush()
        due = session.scalar(select(func.count()).select_from(rule.candidates(now).subquery()))
        erased = 0
        if not dry_run:
            ctx = EventContext(
                actor="retention",
                source=f"retention:{rule.name}",
                occurred_at=now,
                recorded_at=now,
            )
            while True:
                batch = session.scalars(rule.candidates(now).limit(BATCH)).all()
                if not batch:
                    break
                for subject in session.scalars(select(Subject).where(Subject.id.in_(batch))):
                    erase_loaded_subject(
                        session, vault, subject, "retention", ctx, enqueue_removals
                    )
                erased += len(batch)
                session.flush()
                yield PurgeStep(run, len(batch))
        run.counts = {"due": due or 0, "erased": erased}
        run.finished_at = now
        session.flush()
        yield PurgeStep(run, 0)


def count_due(session: Session, rules: list[RetentionRule], now: datetime) -> int:
    return sum(
        session.scalar(select(func.count()).select_from(rule.candidates(now).subquery())) or 0
        for rule in rules
    )
