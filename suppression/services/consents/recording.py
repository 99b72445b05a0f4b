"""Recording consent changes and blocks: an event, then the materialised state.

The state row only moves when the event is at least as new as what it holds, in
one conditional upsert, so an older event that arrives late never wins and two
concurrent writers cannot interleave a read and a write.

The subject's personal fields (country, purchase and inquiry times) are written
only while it is not erased, by a condition in the UPDATE itself; its events are
reduced to suppression facts by services/consents/events.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, or_, update
from sqlalchemy.orm import Session

from suppression.domain.errors import InvalidInput
from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus, EventAction
from suppression.domain.vault import AddressVault
from suppression.services.consents.events import (
    EventContext,
    NewEvent,
    append_event,
    append_events,
)
from suppression.services.destinations.enqueue import (
    enqueue_subject_change,
    enqueue_subject_changes,
)
from suppression.store.decision_inputs import rebuilt_by_caller
from suppression.store.dialects import insert, update_from_rows
from suppression.store.models import Block, ConsentState, Subject
from suppression.store.schema import BigId, UTCDateTime

__all__ = [
    "BlockEvent",
    "EventContext",
    "record_block",
    "record_blocks",
    "record_consent",
    "record_relationship",
    "set_country",
]
from suppression.services.consents.subjects import ensure_subject, ensure_subjects

BLOCK_ACTIONS = {EventAction(kind.value) for kind in BlockKind} | {EventAction.LIFT_RESTRICTION}
RELATIONSHIP_ACTIONS = (EventAction.PURCHASE, EventAction.INQUIRY)


def check_purpose(purpose: str, purposes: tuple[str, ...], allow_all: bool = True) -> str:
    if purpose in purposes or (allow_all and purpose == ALL_PURPOSES):
        return purpose
    choices = ", ".join((*purposes, ALL_PURPOSES) if allow_all else purposes)
    raise InvalidInput(f"unknown purpose {purpose!r}", {"purpose": [f"Must be one of: {choices}."]})


def newer_state_wins(statement: Any) -> Any:
    """The upsert of `consent_states` every writer uses (one event, a batch, an
    import): a state moves only to an event at least as new as the one it holds,
    so an older event arriving late never overrides a newer one."""
    return statement.on_conflict_do_update(
        index_elements=["subject_id", "purpose"],
        set_={k: statement.excluded[k] for k in ("status", "changed_at", "source", "event_id")},
        where=ConsentState.__table__.c.changed_at <= statement.excluded.changed_at,
    )


def record_consent(
    session: Session,
    vault: AddressVault,
    canonical: str,
    purpose: str,
    status: ConsentStatus,
    ctx: EventContext,
    country: str | None = None,
    country_source: CountrySource = CountrySource.HINT,
) -> Subject:
    subject = ensure_subject(session, vault, canonical)
    event = append_event(
        session, vault, subject.id, EventAction(status.value), ctx, purpose, country
    )
    values = {
        "subject_id": subject.id,
        "purpose": purpose,
        "status": status.value,
        "changed_at": ctx.occurred_at,
        "source": ctx.source,
        "event_id": event.id,
    }
    session.execute(newer_state_wins(insert(session, ConsentState).values(**values)))
    if country is not None:
        _update_country(session, subject.id, country, country_source, ctx.occurred_at)
    enqueue_subject_change(session, subject.id, ctx.recorded_at)
    session.expire(subject)
    return subject


def _update_country(
    session: Session, subject_id: int, country: str, source: CountrySource, at: datetime
) -> None:
    update_countries(session, [(subject_id, country, at)], source)


def update_countries(
    session: Session, changes: list[tuple[int, str, datetime]], source: CountrySource
) -> None:
    """(subject id, country, when) each: a stronger source replaces a weaker one;
    among equals the newer wins. An erased subject keeps no country."""
    newest: dict[int, tuple[str, datetime]] = {}
    for subject_id, country, when in changes:
        if subject_id not in newest or newest[subject_id][1] <= when:
            newest[subject_id] = (country, when)
    rows = [{"sid": sid, "country": country, "at": when} for sid, (country, when) in newest.items()]
    update_from_rows(
        session,
        Subject.__table__,
        rows,
        {"sid": BigId, "country": String(2), "at": UTCDateTime()},
        lambda table, given: (
            table.c.id == given["sid"],
            table.c.erased_at.is_(None),
            or_(
                table.c.country_source.is_(None),
                table.c.country_source < int(source),
                (table.c.country_source == int(source))
                & or_(
                    table.c.country_changed_at.is_(None), table.c.country_changed_at <= given["at"]
                ),
            ),
        ),
        lambda given: {
            "country": given["country"],
            "country_source": int(source),
            "country_changed_at": given["at"],
        },
    )


def replaces_declared_country(subject: Subject | None, country: str) -> bool:
    """Whether declaring `country` would replace a different declared country."""
    return (
        subject is not None
        and subject.country_source == int(CountrySource.DECLARED)
        and subject.country != country
    )


def set_country(
    session: Session,
    vault: AddressVault,
    canonical: str,
    country: str,
    source: CountrySource,
    ctx: EventContext,
) -> Subject:
    subject = ensure_subject(session, vault, canonical)
    append_event(session, vault, subject.id, EventAction.COUNTRY_SET, ctx, country=country)
    _update_country(session, subject.id, country, source, ctx.occurred_at)
    enqueue_subject_change(session, subject.id, ctx.recorded_at)
    session.expire(subject)
    return subject


def record_block(
    session: Session,
    vault: AddressVault,
    canonical: str,
    action: str,
    ctx: EventContext,
    country: str | None = None,
) -> Subject:
    """A delivery or rights event: hard bounce, complaint, restriction, objection, lift."""
    _check_block_action(action)
    subject = ensure_subject(session, vault, canonical)
    event = append_event(session, vault, subject.id, EventAction(action), ctx, country=country)
    session.execute(_newer_block_wins(session), _block_row(subject.id, action, ctx, event.id))
    if country is not None:
        _update_country(session, subject.id, country, CountrySource.HINT, ctx.occurred_at)
    enqueue_subject_change(session, subject.id, ctx.recorded_at)
    session.expire(subject)
    return subject


@dataclass(frozen=True)
class BlockEvent:
    canonical: str
    action: str
    ctx: EventContext
    country: str | None = None


def record_blocks(session: Session, vault: AddressVault, events: Sequence[BlockEvent]) -> None:
    """Many blocks (a batch of `POST /v1/blocks`), with the outcome of
    `record_block` for each in turn: one chain extension, and one cached
    statement per table sent for every row while the `decision_inputs` triggers
    stand aside (store/decision_inputs.py), instead of a dozen statements each."""
    for event in events:
        _check_block_action(event.action)
    if not events:
        return
    with rebuilt_by_caller(session) as kept:
        indexes = [vault.index(event.canonical) for event in events]
        sealed = {index: vault.seal(e.canonical) for index, e in zip(indexes, events, strict=True)}
        subjects = ensure_subjects(session, sealed)
        ids = [subjects[index][0] for index in indexes]
        event_ids = append_events(
            session,
            vault,
            [
                NewEvent(sid, EventAction(e.action), e.ctx, country=e.country)
                for sid, e in zip(ids, events, strict=True)
            ],
        )
        # Per (subject, kind) the newest event, the later of equals: what the
        # conditional upserts leave when sent one by one in order.
        newest: dict[tuple[int, str], dict[str, Any]] = {}
        for sid, event, event_id in zip(ids, events, event_ids, strict=True):
            row = _block_row(sid, event.action, event.ctx, event_id)
            held = newest.get((sid, row["kind"]))
            if held is None or held["changed_at"] <= row["changed_at"]:
                newest[(sid, row["kind"])] = row
        session.connection().execute(_newer_block_wins(session), list(newest.values()))
        countries = [
            (sid, e.country, e.ctx.occurred_at)
            for sid, e in zip(ids, events, strict=True)
            if e.country is not None
        ]
        if countries:
            update_countries(session, countries, CountrySource.HINT)
        kept.touched.update(ids)
        enqueue_subject_changes(
            session, sorted(set(ids)), max(event.ctx.recorded_at for event in events)
        )


def _check_block_action(action: str) -> None:
    if action not in BLOCK_ACTIONS:
        raise InvalidInput(f"unknown block kind {action!r}", {"kind": ["Unknown kind."]})


def _block_row(subject_id: int, action: str, ctx: EventContext, event_id: int) -> dict[str, Any]:
    """A lift ends the restriction: it is the restriction's row, inactive."""
    lifts = action == EventAction.LIFT_RESTRICTION
    return {
        "subject_id": subject_id,
        "kind": BlockKind.RESTRICTION.value if lifts else action,
        "is_active": not lifts,
        "changed_at": ctx.occurred_at,
        "source": ctx.source,
        "event_id": event_id,
    }


def _newer_block_wins(session: Session) -> Any:
    """The block upsert: a block moves only to an event at least as new as its own."""
    statement = insert(session, Block.__table__)
    return statement.on_conflict_do_update(
        index_elements=["subject_id", "kind"],
        set_={k: statement.excluded[k] for k in ("is_active", "changed_at", "source", "event_id")},
        where=Block.__table__.c.changed_at <= statement.excluded.changed_at,
    )


def record_relationship(
    session: Session, vault: AddressVault, canonical: str, kind: str, ctx: EventContext
) -> Subject:
    """A purchase or an inquiry: the basis of implied consent (soft opt-in)."""
    if kind not in RELATIONSHIP_ACTIONS:
        raise InvalidInput(f"unknown relationship {kind!r}", {"kind": ["Unknown kind."]})
    subject = ensure_subject(session, vault, canonical)
    append_event(session, vault, subject.id, EventAction(kind), ctx)
    column = Subject.last_purchase_at if kind == EventAction.PURCHASE else Subject.last_inquiry_at
    session.execute(
        update(Subject)
        .where(
            Subject.id == subject.id,
            Subject.erased_at.is_(None),
            or_(column.is_(None), column < ctx.occurred_at),
        )
        .values({column: ctx.occurred_at})
        .execution_options(synchronize_session=False)
    )
    session.expire(subject)
    return subject
