"""The one-click intake: accept an RFC 8058 unsubscribe with one INSERT, fold it
into the event chain later, in batches.

Why: a one-click written straight into the chain costs a dozen statements under
the chain-head lock, which serialises every writer of every worker. The person
needs one thing at once: that the opt-out is durable and counts. So the request
commits one intake row (keyed index, sealed address, purpose and the evidence),
and checks count pending rows as opt-outs (`pending_opt_outs`). The fold then
does what `unsubscribes.unsubscribe` does for one request, for a whole batch:
skip erased subjects and opt-outs already in force, append the events in one
chain extension, move the state only where the event is the newest, queue the
destinations, count the alarm tally; and it deletes the intake rows in the same
transaction, so a row is folded exactly once even when the folder dies midway.

The folded event keeps the click's time as occurred_at and recorded_at (it was
durably recorded then): an event newer than the click is never overridden.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert, select
from sqlalchemy.orm import Session

from suppression.domain.addresses import domain_of
from suppression.domain.policy import (
    ALL_PURPOSES,
    ConsentRecord,
    ConsentStatus,
    EventAction,
    PolicySettings,
    effective_consent,
)
from suppression.domain.vault import AddressVault
from suppression.services.consents.alarms import AlarmRule, note_unsubscribe
from suppression.services.consents.events import (
    EventContext,
    NewEvent,
    append_events,
    note_communications,
)
from suppression.services.consents.recording import newer_state_wins
from suppression.services.consents.subjects import ensure_subjects
from suppression.services.destinations.enqueue import enqueue_subject_changes
from suppression.services.links.unsubscribes import ACTOR, link_purpose
from suppression.store import dialects
from suppression.store.decision_inputs import rebuilt_by_caller
from suppression.store.models import ApiKey, ConsentState, OneClickIntake, UnsubscribeAlarm

BATCH = 500  # intake rows per fold transaction: big enough to amortise the chain lock
# The minting API key's id in an intake row's evidence: the fold names the key
# (`link_minted_by`), so the one-click itself reads nothing.
MINTER_KEY = "link_minter_key_id"

StateKey = tuple[int, str]  # (subject id, purpose)


@dataclass
class FoldOutcome:
    folded: int = 0  # intake rows consumed (and deleted)
    recorded: Counter[str] = field(default_factory=Counter)  # events appended, per source
    alarms: list[UnsubscribeAlarm] = field(default_factory=list)  # alarms they raised


def one_click_row(
    vault: AddressVault,
    policy: PolicySettings,
    address: str,
    purpose: str,
    ctx: EventContext,
) -> dict[str, Any]:
    """One click's intake row: the keyed index, the sealed address, the purpose and
    the evidence. Nothing is read or written to build it."""
    return {
        "email_index": vault.index(address),
        "email_sealed": vault.seal(address),
        "purpose": link_purpose(purpose, policy),
        "occurred_at": ctx.occurred_at,
        "source": ctx.source,
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "campaign": ctx.campaign,
        "evidence": dict(ctx.evidence) if ctx.evidence else None,
    }


def accept_one_clicks(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Record unsubscribes for folding, no lock on anything shared: the INSERT sent
    for every row at once (psycopg pipelines it, and on an autocommit connection
    runs it as one implicit transaction: one commit). Core with one cached
    statement: a multi-row VALUES would be compiled anew for every call.
    (Not the ORM's bulk path: this is the whole of the requests' work.)"""
    if rows:
        session.connection().execute(_ACCEPT, list(rows))


_ACCEPT = insert(OneClickIntake.__table__)


def pending_opt_outs(session: Session) -> dict[bytes, frozenset[str]]:
    """Keyed index -> purposes (`all` included) of the intake rows not yet folded:
    each already counts as an opt-out."""
    found: defaultdict[bytes, set[str]] = defaultdict(set)
    for index, purpose in session.execute(
        select(OneClickIntake.email_index, OneClickIntake.purpose)
    ):
        found[bytes(index)].add(purpose)
    return {index: frozenset(purposes) for index, purposes in found.items()}


@dataclass(frozen=True)
class Backlog:
    """The intake rows waiting to be folded (for operators: `sync status`, the
    staff page of destinations)."""

    waiting: int
    oldest: datetime | None  # the oldest waiting click
    overdue: bool  # it has waited past the deadline: no worker is folding


def backlog(session: Session, now: datetime, deadline: timedelta) -> Backlog:
    count, oldest = session.execute(
        select(func.count(), func.min(OneClickIntake.occurred_at))
    ).one()
    return Backlog(int(count), oldest, oldest is not None and oldest < now - deadline)


def has_pending(session: Session, index: bytes) -> bool:
    return (
        session.scalar(
            select(OneClickIntake.id).where(OneClickIntake.email_index == index).limit(1)
        )
        is not None
    )


def fold_intake(
    session: Session,
    vault: AddressVault,
    policy: PolicySettings,
    rule: AlarmRule,
    limit: int = BATCH,
    index: bytes | None = None,
) -> FoldOutcome:
    """Fold up to `limit` intake rows, oldest first (only `index`'s when given).

    On PostgreSQL a batch skips rows another folder holds, so folders in several
    processes share the work; folding one address waits for them instead, so
    that its reader sees the result. On SQLite the write lock serialises folders.
    """
    query = select(OneClickIntake).order_by(OneClickIntake.id).limit(limit)
    if index is not None:
        query = query.where(OneClickIntake.email_index == index)
    rows = list(session.scalars(dialects.claimed(session, query, skip_locked=index is None)))
    outcome = FoldOutcome(folded=len(rows))
    if not rows:
        return outcome
    # A batch writes subjects and states with several statements of hundreds of
    # rows each; `decision_inputs` is copied once for the subjects it touched
    # instead of by the triggers after each one (store/decision_inputs.py).
    with rebuilt_by_caller(session) as kept:
        subjects = ensure_subjects(session, {row.email_index: row.email_sealed for row in rows})
        states = _states(session, [sid for sid, erased in subjects.values() if not erased])
        recorded: list[OneClickIntake] = []
        events: list[NewEvent] = []
        minters = _minter_names(session, rows)
        for row in rows:
            subject_id, erased = subjects[row.email_index]
            targets = policy.purposes if row.purpose == ALL_PURPOSES else (row.purpose,)
            if erased or all(_opted_out(states, subject_id, target) for target in targets):
                continue  # as a repeated or erased unsubscribe: nothing is stored
            recorded.append(row)
            events.append(
                NewEvent(subject_id, EventAction.OPTED_OUT, _context(row, minters), row.purpose)
            )
            current = states.get((subject_id, row.purpose))
            if current is None or current[1] <= row.occurred_at:
                states[(subject_id, row.purpose)] = (
                    ConsentStatus.OPTED_OUT.value,
                    row.occurred_at,
                )
        if events:
            ids = append_events(session, vault, events)
            _move_states(session, events, ids)
            newest: dict[int, datetime] = {}
            for new in events:
                newest[new.subject_id] = max(
                    newest.get(new.subject_id, new.ctx.occurred_at), new.ctx.occurred_at
                )
            note_communications(session, newest)
            # Every subject the batch created has an event (nobody new is opted out).
            kept.touched.update(newest)
            enqueue_subject_changes(session, sorted(newest), max(newest.values()))
            outcome.recorded.update(row.source for row in recorded)
            outcome.alarms = _count_alarms(session, vault, recorded, rule)
    session.execute(
        delete(OneClickIntake)
        .where(OneClickIntake.id.in_([row.id for row in rows]))
        .execution_options(synchronize_session=False)
    )
    for row in rows:  # deleted: drop them from the session too
        session.expunge(row)
    return outcome


def _minter_names(session: Session, rows: list[OneClickIntake]) -> dict[int, str]:
    ids = {row.evidence[MINTER_KEY] for row in rows if row.evidence and MINTER_KEY in row.evidence}
    if not ids:
        return {}
    found = session.execute(select(ApiKey.id, ApiKey.name).where(ApiKey.id.in_(sorted(ids))))
    return {key_id: f"api_key:{name}" for key_id, name in found}


def _context(row: OneClickIntake, minters: dict[int, str]) -> EventContext:
    evidence = dict(row.evidence) if row.evidence else None
    if evidence and MINTER_KEY in evidence:
        key_id = evidence.pop(MINTER_KEY)
        evidence["link_minted_by"] = minters.get(key_id, f"api_key#{key_id}")
    return EventContext(
        actor=ACTOR,
        source=row.source,
        occurred_at=row.occurred_at,
        recorded_at=row.occurred_at,
        ip=row.ip,
        user_agent=row.user_agent,
        campaign=row.campaign,
        evidence=evidence,
    )


def _states(session: Session, subject_ids: list[int]) -> dict[StateKey, tuple[str, datetime]]:
    if not subject_ids:
        return {}
    found = session.execute(
        select(
            ConsentState.subject_id,
            ConsentState.purpose,
            ConsentState.status,
            ConsentState.changed_at,
        ).where(ConsentState.subject_id.in_(sorted(set(subject_ids))))
    )
    return {(sid, purpose): (status, changed) for sid, purpose, status, changed in found}


def _opted_out(states: dict[StateKey, tuple[str, datetime]], subject_id: int, purpose: str) -> bool:
    def record(name: str) -> ConsentRecord | None:
        state = states.get((subject_id, name))
        return ConsentRecord(ConsentStatus(state[0]), state[1]) if state else None

    consent = effective_consent(record(purpose), record(ALL_PURPOSES))
    return consent is not None and consent.status == ConsentStatus.OPTED_OUT


def _move_states(session: Session, events: list[NewEvent], ids: Sequence[int]) -> None:
    """One conditional upsert for the batch: per (subject, purpose) the batch's
    newest event, and only where it is at least as new as the stored state."""
    newest: dict[StateKey, dict[str, Any]] = {}
    for new, event_id in zip(events, ids, strict=True):
        key = (new.subject_id, new.purpose or "")
        held = newest.get(key)
        if held is None or held["changed_at"] <= new.ctx.occurred_at:
            newest[key] = {
                "subject_id": new.subject_id,
                "purpose": new.purpose,
                "status": new.action,
                "changed_at": new.ctx.occurred_at,
                "source": new.ctx.source,
                "event_id": event_id,
            }
    # One cached statement sent for every row (executemany): a multi-row VALUES
    # would be compiled anew for each batch, a third of the fold's CPU.
    statement = newer_state_wins(dialects.insert(session, ConsentState.__table__))
    session.connection().execute(statement, list(newest.values()))


def _count_alarms(
    session: Session, vault: AddressVault, recorded: list[OneClickIntake], rule: AlarmRule
) -> list[UnsubscribeAlarm]:
    """The mass-unsubscribe tally, one call per (domain, campaign, minute) of the
    batch instead of one per unsubscribe."""
    groups: dict[tuple[str, str | None, datetime], list[datetime]] = defaultdict(list)
    for row in recorded:
        domain = domain_of(vault.open(row.email_sealed))
        minute = row.occurred_at.replace(second=0, microsecond=0)
        groups[(domain, row.campaign, minute)].append(row.occurred_at)
    alarms = []
    for (domain, campaign, _minute), times in sorted(groups.items(), key=lambda g: g[0][2]):
        alarm = note_unsubscribe(session, domain, campaign, max(times), rule, len(times))
        if alarm is not None:
            alarms.append(alarm)
    return alarms
