"""Appending events to the evidence log, each linked into the tamper-evident chain.

The chain head is one row locked for the rest of the transaction, so appends are
serialised (on SQLite they already are). Keep write transactions short.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from suppression.domain.chain import (
    GENESIS,
    SALT_BYTES,
    ChainedFields,
    StoredLink,
    link_hash,
    personal_digest,
)
from suppression.models import ChainHead, ConsentEvent, Subject
from suppression.services.dialects import dialect_name, insert

# Events that come from the person or from a transaction with them: retention
# counts "last communication" from the newest of these (bounces do not count).
COMMUNICATION_ACTIONS = frozenset(
    {
        "opted_in",
        "opted_out",
        "purchase",
        "inquiry",
        "complaint",
        "restriction",
        "objection",
        "lift_restriction",
        "country_set",
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
    query = select(ChainHead).where(ChainHead.id == 1)
    if dialect_name(session) == "postgresql":
        query = query.with_for_update()
    return session.scalars(query.execution_options(populate_existing=True)).one()


@dataclass(frozen=True)
class NewEvent:
    subject_id: int
    action: str
    ctx: EventContext
    purpose: str | None = None
    country: str | None = None


def _chained_row(previous: bytes, seq: int, new: NewEvent) -> dict[str, Any]:
    """The event's column values, linked after `previous` as link number `seq`."""
    ctx = new.ctx
    evidence = dict(ctx.evidence) if ctx.evidence else None
    salt = os.urandom(SALT_BYTES)
    digest = personal_digest(salt, ctx.ip, ctx.user_agent, evidence, new.country)
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
        "evidence": evidence,
        "chain_seq": seq,
        "prev_hash": previous,
        "row_hash": link_hash(previous, fields, digest),
        "personal_digest": digest,
        "personal_salt": salt,
    }


def append_event(
    session: Session,
    subject_id: int,
    action: str,
    ctx: EventContext,
    purpose: str | None = None,
    country: str | None = None,
) -> ConsentEvent:
    head = _locked_head(session)
    row = _chained_row(head.hash, head.seq + 1, NewEvent(subject_id, action, ctx, purpose, country))
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


def append_events(session: Session, events: Sequence[NewEvent]) -> list[int]:
    """Many events in one statement (imports): their ids, in the order given."""
    if not events:
        return []
    head = _locked_head(session)
    previous, seq = head.hash, head.seq
    rows = []
    for new in events:
        seq += 1
        row = _chained_row(previous, seq, new)
        rows.append(row)
        previous = row["row_hash"]
    ids = list(
        session.scalars(
            insert(session, ConsentEvent).returning(ConsentEvent.id, sort_by_parameter_order=True),
            rows,
        )
    )
    head.seq, head.hash = seq, previous
    touched = {new.subject_id for new in events if new.action in COMMUNICATION_ACTIONS}
    if touched:
        newest = (
            select(func.max(ConsentEvent.occurred_at))
            .where(
                ConsentEvent.subject_id == Subject.id,
                ConsentEvent.action.in_(COMMUNICATION_ACTIONS),
            )
            .scalar_subquery()
        )
        session.execute(
            update(Subject)
            .where(Subject.id.in_(touched))
            .values(last_communication_at=newest)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return ids


def stored_links(session: Session, batch: int = 5000) -> Iterator[StoredLink]:
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
            yield as_link(event)
        last = events[-1].chain_seq
        session.expunge_all()


def as_link(event: ConsentEvent) -> StoredLink:
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
        evidence=event.evidence,
        country=event.country,
    )


def chain_head(session: Session) -> tuple[int, bytes]:
    head = session.get(ChainHead, 1)
    return (head.seq, head.hash) if head else (0, GENESIS)
