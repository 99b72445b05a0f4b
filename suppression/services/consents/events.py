"""Appending events to the evidence log, each linked into the tamper-evident chain.

The chain head is one row locked for the rest of the transaction, so appends are
serialised (on SQLite they already are). Keep write transactions short.

Free evidence is stored sealed with the vault's current key (it often holds the
address itself): its canonical JSON, the bytes the chain's personal digest covers.

An event about an erased subject (erasure pending or done) keeps only what
suppression needs: action, purpose, source, actor and its times. Every personal
field is dropped here, where all events are written, whatever the caller sent:
a sender's bounce or an import cannot bring back what erasure removed. Erased is
read after the chain head is locked, so an erasure committed meanwhile counts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from suppression.domain.chain import (
    GENESIS,
    SALT_BYTES,
    BatchLinker,
    ChainedFields,
    LinkEncoder,
    canonical_json,
    link_hash,
    personal_digest_of_json,
)
from suppression.domain.event_rows import EventRow, PreparedLink, facts_only
from suppression.domain.policy import EventAction
from suppression.domain.vault import AddressVault
from suppression.store.dialects import (
    claimed,
    id_filters,
    insert,
    update_from_rows,
)
from suppression.store.event_writes import write_linked_events
from suppression.store.models import ChainHead, ConsentEvent, Subject
from suppression.store.schema import BigId, UTCDateTime

# Events that come from the person or from a transaction with them: retention
# counts "last communication" from the newest of these (bounces do not count).
COMMUNICATION_ACTIONS = frozenset(
    {
        EventAction.OPTED_IN,
        EventAction.OPTED_OUT,
        EventAction.PURCHASE,
        EventAction.INQUIRY,
        EventAction.COMPLAINT,
        EventAction.RESTRICTION,
        EventAction.OBJECTION,
        EventAction.LIFT_RESTRICTION,
        EventAction.COUNTRY_SET,
    }
)


@dataclass(frozen=True)
class EventContext:
    """Who and how: the evidence every event carries."""

    actor: str
    source: str
    occurred_at: datetime
    recorded_at: datetime
    ip: str | None = None
    user_agent: str | None = None
    campaign: str | None = None
    notice_version: str | None = None
    evidence: Mapping[str, Any] | None = field(default=None)


def _locked_head(session: Session) -> ChainHead:
    session.execute(
        insert(session, ChainHead)
        .values(id=1, seq=0, hash=GENESIS)
        .on_conflict_do_nothing(index_elements=["id"])
    )
    query = claimed(session, select(ChainHead).where(ChainHead.id == 1), skip_locked=False)
    return session.scalars(query.execution_options(populate_existing=True)).one()


@dataclass(frozen=True)
class NewEvent:
    subject_id: int
    action: EventAction
    ctx: EventContext
    purpose: str | None = None
    country: str | None = None


def _facts_only(ctx: EventContext) -> EventContext:
    """The context of an event about an erased subject: who, how and when only."""
    return EventContext(ctx.actor, ctx.source, ctx.occurred_at, ctx.recorded_at)


def _is_erased(session: Session, subject_id: int) -> bool:
    return session.scalar(select(Subject.erased_at).where(Subject.id == subject_id)) is not None


def _erased_among(session: Session, subject_ids: set[int]) -> set[int]:
    erased: set[int] = set()
    for among in id_filters(session, Subject.id, sorted(subject_ids)):
        erased.update(
            session.scalars(select(Subject.id).where(among, Subject.erased_at.is_not(None)))
        )
    return erased


def _chained_row(
    vault: AddressVault, previous: bytes, seq: int, new: NewEvent, erased: bool
) -> dict[str, Any]:
    """The event's column values, linked after `previous` as link number `seq`.
    An erased subject's event has no salt: nothing personal to digest, as after
    `erasure.drop_personal_data`."""
    ctx = new.ctx
    evidence = canonical_json(dict(ctx.evidence)) if ctx.evidence else None
    salt = os.urandom(SALT_BYTES)
    digest = personal_digest_of_json(salt, ctx.ip, ctx.user_agent, evidence or b"null", new.country)
    fields = ChainedFields(
        seq=seq,
        subject_id=new.subject_id,
        action=new.action,
        purpose=new.purpose,
        source=ctx.source,
        actor=ctx.actor,
        occurred_at=ctx.occurred_at,
        recorded_at=ctx.recorded_at,
        campaign=ctx.campaign,
        notice_version=ctx.notice_version,
    )
    return {
        "subject_id": new.subject_id,
        "action": new.action,
        "purpose": new.purpose,
        "source": ctx.source,
        "actor": ctx.actor,
        "occurred_at": ctx.occurred_at,
        "recorded_at": ctx.recorded_at,
        "ip": ctx.ip,
        "user_agent": ctx.user_agent,
        "campaign": ctx.campaign,
        "notice_version": ctx.notice_version,
        "country": new.country,
        "evidence_sealed": None if evidence is None else vault.seal_evidence(evidence),
        "chain_seq": seq,
        "prev_hash": previous,
        "row_hash": link_hash(previous, fields, digest),
        "personal_digest": digest,
        "personal_salt": None if erased else salt,
    }


def append_event(
    session: Session,
    vault: AddressVault,
    subject_id: int,
    action: EventAction,
    ctx: EventContext,
    purpose: str | None = None,
    country: str | None = None,
) -> ConsentEvent:
    """One event; its evidence is sealed with the vault's current key."""
    head = _locked_head(session)
    erased = _is_erased(session, subject_id)
    if erased:
        ctx, country = _facts_only(ctx), None
    new = NewEvent(subject_id, action, ctx, purpose, country)
    row = _chained_row(vault, head.hash, head.seq + 1, new, erased)
    event = ConsentEvent(**row)
    head.seq, head.hash = row["chain_seq"], row["row_hash"]
    session.add(event)
    session.flush()
    if action in COMMUNICATION_ACTIONS:
        session.execute(
            update(Subject)
            .where(
                Subject.id == subject_id,
                or_(
                    Subject.last_communication_at.is_(None),
                    Subject.last_communication_at < ctx.occurred_at,
                ),
            )
            .values(last_communication_at=ctx.occurred_at)
            .execution_options(synchronize_session=False)
        )
    return event


def append_events(
    session: Session, vault: AddressVault, events: Sequence[NewEvent]
) -> Sequence[int]:
    """Many events at once: their ids, in the order given."""
    return append_event_rows(
        session,
        vault,
        [
            EventRow(
                new.subject_id,
                new.action,
                new.purpose,
                new.ctx.source,
                new.ctx.actor,
                new.ctx.occurred_at,
                new.ctx.recorded_at,
                new.country,
                new.ctx.evidence,
                new.ctx.ip,
                new.ctx.user_agent,
                new.ctx.campaign,
                new.ctx.notice_version,
            )
            for new in events
        ],
    )


def prepare_links(
    vault: AddressVault, events: Sequence[EventRow], encoder: LinkEncoder | None = None
) -> list[PreparedLink]:
    """What the chain needs of each event but its place in it, and its evidence
    sealed; needs no database, so it may be computed ahead (the importer does it
    in its reading thread)."""
    encoder = encoder or LinkEncoder()
    # One read of the system's random source for every salt of the batch.
    salts = os.urandom(SALT_BYTES * len(events))
    prepared = []
    for at, event in enumerate(events):
        evidence = dict(event.evidence) if event.evidence else None
        parts = encoder.parts(
            salts[at * SALT_BYTES : (at + 1) * SALT_BYTES],
            event.action,
            event.purpose,
            event.source,
            event.actor,
            event.occurred_at,
            event.recorded_at,
            event.campaign,
            event.notice_version,
            event.ip,
            event.user_agent,
            evidence,
            event.country,
        )
        sealed = None if evidence is None else vault.seal_evidence(parts.evidence)
        prepared.append(PreparedLink(parts, sealed))
    return prepared


def append_event_rows(
    session: Session,
    vault: AddressVault,
    events: Sequence[EventRow],
    prepared: Sequence[PreparedLink] | None = None,
    erased: set[int] | None = None,
) -> Sequence[int]:
    """Many events at once (imports): their ids, in the order given. `prepared`,
    if given, is `prepare_links(vault, events)` computed ahead. `erased`, if
    given, are the erased among the events' subjects as the caller read them
    under a lock it still holds (the importer's upsert of the subjects); else
    they are read here, once the chain head is locked.

    Linked by `BatchLinker` (the same hashes as one `append_event` at a time).
    PostgreSQL takes them by binary COPY with ids reserved from the table's
    sequence; SQLite by one executemany, ids read back by their chain numbers.
    """
    if not events:
        return []
    if prepared is None:
        prepared = prepare_links(vault, events)
    head = _locked_head(session)
    if erased is None:
        erased = _erased_among(session, {event.subject_id for event in events})
    if erased:
        events, prepared = _stripped(vault, events, prepared, erased)
    linker = BatchLinker(head.hash, head.seq)
    ids = write_linked_events(session, events, prepared, linker, erased)
    head.seq, head.hash = linker.seq, linker.previous
    session.flush()
    return ids


def _stripped(
    vault: AddressVault,
    events: Sequence[EventRow],
    prepared: Sequence[PreparedLink],
    erased: set[int],
) -> tuple[list[EventRow], list[PreparedLink]]:
    """The events of erased subjects reduced to `facts_only`, and their links
    prepared again (what was prepared ahead covered the fields now dropped)."""
    events = [facts_only(e) if e.subject_id in erased else e for e in events]
    at = [n for n, event in enumerate(events) if event.subject_id in erased]
    prepared = list(prepared)
    for n, link in zip(at, prepare_links(vault, [events[n] for n in at]), strict=True):
        prepared[n] = link
    return events, prepared


def note_communications(session: Session, latest: Mapping[int, datetime]) -> None:
    """Move each subject's last communication forward to the given time."""
    if not latest:
        return
    update_from_rows(
        session,
        Subject.__table__,
        [{"sid": sid, "at": at} for sid, at in latest.items()],
        {"sid": BigId, "at": UTCDateTime()},
        lambda table, given: (
            table.c.id == given["sid"],
            or_(
                table.c.last_communication_at.is_(None),
                table.c.last_communication_at < given["at"],
            ),
        ),
        lambda given: {"last_communication_at": given["at"]},
    )
