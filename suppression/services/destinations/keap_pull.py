"""Keap back into the service: what Keap itself learnt (its footer unsubscribe, a
spam report, a bounce) becomes an event here, and so reaches every other
destination.

Keap's status (infusionsoft/keap-sdk, sdks/v2/swagger.yml, RestEmailAddressStatus
`status`) maps to one event with source `keap`:

- LIST_UNSUBSCRIBE, MANUAL, ADMIN, SYSTEM (Keap's "Opt-Out: ..." statuses): opted
  out of every purpose. Keap keeps one marketable flag per address, not per list,
  so the person left the company's marketing as a whole.
- SPAM, FEEDBACK (a complaint, by the person or a feedback loop): a complaint block.
- BOUNCE, HARD_BOUNCE: a hard bounce block.

Marketable statuses, and non-marketable ones that say nothing about the person
(NON_MARKETABLE, UNENGAGED_NON_MARKETABLE, LOCKDOWN, INVALID, DEACTIVATED), change
nothing, and so does anything about an erased subject. The event's time is
Keap's `create_time`, so an older Keap status never
overrides a newer opt-in here; a Keap status already recorded (an event from
`keap` with the same action at or after that time) is not recorded again, and a
MANUAL opt-out no later than our own confirmed push to Keap is that push's echo.

Keap is never told of what it reported: its outbox row goes and it is recorded
as holding the person suppressed (settle.settle_reported_by_platform).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import exists, or_, select, update
from sqlalchemy.orm import Session

from suppression.connectors.base import DestinationError, Operation
from suppression.connectors.keap_pull import KeapStatus, KeapStatusReader
from suppression.domain.addresses import canonicalise
from suppression.domain.destinations import PushOutcome
from suppression.domain.policy import ALL_PURPOSES, ConsentStatus, EventAction
from suppression.domain.sources import SOURCE_KEAP
from suppression.domain.vault import AddressVault
from suppression.services.consents.recording import EventContext, record_block, record_consent
from suppression.services.consents.subjects import find_subject
from suppression.services.destinations.settle import settle_reported_by_platform
from suppression.store.dialects import execute_dml, insert
from suppression.store.models import ConsentEvent
from suppression.store.models.destinations import DestinationPush
from suppression.store.models.keap_pull import KeapPullCursor

logger = logging.getLogger(__name__)

SOURCE = SOURCE_KEAP
ACTOR = "keap pull"
CURSOR = "keap"
OPTED_OUT = EventAction.OPTED_OUT
ACTIONS = {
    "LIST_UNSUBSCRIBE": OPTED_OUT,
    "MANUAL": OPTED_OUT,
    "ADMIN": OPTED_OUT,
    "SYSTEM": OPTED_OUT,
    "SPAM": EventAction.COMPLAINT,
    "FEEDBACK": EventAction.COMPLAINT,
    "BOUNCE": EventAction.HARD_BOUNCE,
    "HARD_BOUNCE": EventAction.HARD_BOUNCE,
}
# What Keap shows after our own PATCH opted_in=false (connectors/keap.py).
OUR_OWN_STATUS = "MANUAL"
# Keap's clock and ours: a status this close after our push is still its echo.
CLOCK_SLACK = timedelta(minutes=5)
# Destination reasons (DestinationSubject.reason) of each action.
_HELD_REASON = {
    OPTED_OUT: "opted_out",
    EventAction.COMPLAINT: "complained",
    EventAction.HARD_BOUNCE: "bounced",
}


class StatusOutcome(StrEnum):
    """What became of one listed address (named as KeapPullReport's counters)."""

    RECORDED = "recorded"  # a new event
    KNOWN = "known"  # already recorded, or our own push's echo
    IGNORED = "ignored"  # marketable, or a status that says nothing about the person
    UNREADABLE = "unreadable"  # not an address we can canonicalise


@dataclass
class KeapPullReport:
    read: int = 0  # entries Keap listed at or after the high-water mark
    recorded: int = 0  # new events
    known: int = 0  # already recorded, or our own push's echo
    ignored: int = 0  # marketable, or a status that says nothing about the person
    unreadable: int = 0  # not an address we can canonicalise
    complete: bool = False  # every page down to the previous mark was read
    error: str | None = None


def record_keap_status(
    session: Session, vault: AddressVault, status: KeapStatus, now: datetime
) -> StatusOutcome:
    """Record one listed address; answers what became of it."""
    action = ACTIONS.get(status.status)
    if status.opted_in or action is None:
        return StatusOutcome.IGNORED
    canonical = canonicalise(status.email)
    if canonical is None:
        return StatusOutcome.UNREADABLE
    subject = find_subject(session, vault, canonical)
    if subject is not None and (
        subject.erased_at is not None  # suppressed for good; nothing to add
        or _already_recorded(session, subject.id, action, status.create_time)
        or (action == OPTED_OUT and _echoes_our_push(session, subject.id, status))
    ):
        return StatusOutcome.KNOWN
    ctx = EventContext(
        actor=ACTOR,
        source=SOURCE,
        occurred_at=status.create_time,
        recorded_at=now,
        evidence={"keap_status": status.status, "keap_create_time": status.create_time.isoformat()},
    )
    if action == OPTED_OUT:
        subject = record_consent(
            session, vault, canonical, ALL_PURPOSES, ConsentStatus.OPTED_OUT, ctx
        )
    else:
        subject = record_block(session, vault, canonical, action, ctx)
    settle_reported_by_platform(session, SOURCE, subject.id, _HELD_REASON[action], now)
    return StatusOutcome.RECORDED


def _already_recorded(session: Session, subject_id: int, action: EventAction, at: datetime) -> bool:
    return bool(
        session.scalar(
            select(
                exists().where(
                    ConsentEvent.subject_id == subject_id,
                    ConsentEvent.source == SOURCE,
                    ConsentEvent.action == action,
                    ConsentEvent.occurred_at >= at,
                )
            )
        )
    )


def _echoes_our_push(session: Session, subject_id: int, status: KeapStatus) -> bool:
    if status.status != OUR_OWN_STATUS:
        return False
    return bool(
        session.scalar(
            select(
                exists().where(
                    DestinationPush.destination == SOURCE,
                    DestinationPush.subject_id == subject_id,
                    DestinationPush.operation == Operation.SUPPRESS,
                    DestinationPush.outcome == PushOutcome.CONFIRMED,
                    DestinationPush.pushed_at >= status.create_time - CLOCK_SLACK,
                )
            )
        )
    )


def record_keap_statuses(
    session: Session,
    vault: AddressVault,
    statuses: Iterable[KeapStatus],
    now: datetime,
    report: KeapPullReport,
) -> None:
    for status in statuses:
        outcome = record_keap_status(session, vault, status, now)
        setattr(report, outcome, getattr(report, outcome) + 1)


@dataclass(frozen=True)
class Claim:
    due: bool
    high_water: datetime | None = None  # read down to this create_time (None: everything)


def claim_pull(session: Session, now: datetime, every: timedelta) -> Claim:
    """Take the pull if it is due: at most one per `every`, across workers."""
    session.execute(
        insert(session, KeapPullCursor)
        .values(name=CURSOR)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    taken = execute_dml(
        session,
        update(KeapPullCursor)
        .where(
            KeapPullCursor.name == CURSOR,
            or_(KeapPullCursor.pulled_at.is_(None), KeapPullCursor.pulled_at <= now - every),
        )
        .values(pulled_at=now)
        .execution_options(synchronize_session=False),
    )
    if not taken.rowcount:
        return Claim(False)
    mark = select(KeapPullCursor.high_water_at).where(KeapPullCursor.name == CURSOR)
    return Claim(True, session.scalar(mark))


def finish_pull(
    session: Session, high_water: datetime | None, now: datetime, error: str | None
) -> None:
    values: dict[str, object] = {"last_error": error}
    if error is None:
        values.update(high_water_at=high_water, completed_at=now)
    session.execute(
        update(KeapPullCursor)
        .where(KeapPullCursor.name == CURSOR)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


class KeapPull:
    """Keap's status list, read back at most once per `every` across workers."""

    def __init__(self, vault: AddressVault, reader: KeapStatusReader, every: timedelta):
        self.vault = vault
        self.reader = reader
        self.every = every

    def start(self, session: Session, now: datetime) -> KeapPullRun | None:
        """Claim the pull (flushed); None when the last one is more recent than `every`."""
        claim = claim_pull(session, now, self.every)
        if not claim.due:
            return None
        return KeapPullRun(self.vault, self.reader, claim.high_water)

    def close(self) -> None:
        self.reader.close()


class KeapPullRun:
    """One claimed pull, in units of work for the edge to commit one by one: read
    a page (`pages`, no transaction open), `record` it and commit, and only after
    the last page `finish` (the high-water mark moves past committed events only)."""

    def __init__(self, vault: AddressVault, reader: KeapStatusReader, high_water: datetime | None):
        self.vault = vault
        self.reader = reader
        self.high_water = high_water
        self.newest = high_water
        self.report = KeapPullReport()

    def pages(self) -> Iterator[list[KeapStatus]]:
        """Each page's entries at or after the mark, newest first; the next page is
        read once the edge committed this one. A failed read ends the pull."""
        high_water = self.high_water
        try:
            for page in self.reader.pages():
                fresh = [
                    s for s in page.statuses if high_water is None or s.create_time >= high_water
                ]
                self.report.read += len(fresh)
                yield fresh
                times = [s.create_time for s in fresh] + ([self.newest] if self.newest else [])
                self.newest = max(times, default=None)
                if len(fresh) < len(page.statuses):
                    break  # newest first: the rest is older than the mark
            self.report.complete = True
        except DestinationError as exc:
            self.report.error = exc.message
            logger.warning("Keap pull stopped: %s", exc.message)

    def record(self, session: Session, statuses: Iterable[KeapStatus], now: datetime) -> None:
        record_keap_statuses(session, self.vault, statuses, now, self.report)

    def finish(self, session: Session, now: datetime) -> KeapPullReport:
        finish_pull(session, self.newest, now, self.report.error)
        return self.report
