"""Appending events to the evidence log, each linked into the tamper-evident chain.

The chain head is one row locked for the rest of the transaction, so appends are
serialised (on SQLite they already are). Keep write transactions short.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, text, update
from sqlalchemy.orm import Session

from suppression.db import BigId, UTCDateTime
from suppression.domain.chain import (
    GENESIS,
    SALT_BYTES,
    ChainedFields,
    StoredLink,
    link_hash,
    personal_digest,
)
from suppression.models import ChainHead, ConsentEvent, Subject
from suppression.services.dialects import dialect_name, insert, update_from_rows

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


_EVENT_COLUMNS = (
    "id",
    "subject_id",
    "action",
    "purpose",
    "source",
    "actor",
    "occurred_at",
    "recorded_at",
    "ip",
    "user_agent",
    "campaign",
    "notice_version",
    "country",
    "evidence",
    "chain_seq",
    "prev_hash",
    "row_hash",
    "personal_digest",
    "personal_salt",
)
_EVIDENCE = _EVENT_COLUMNS.index("evidence")


def append_events(session: Session, events: Sequence[NewEvent]) -> list[int]:
    """Many events at once (imports): their ids, in the order given.

    PostgreSQL takes them by COPY, SQLite by one executemany; ids are read back
    by their chain numbers, which the head lock makes ours alone.
    """
    if not events:
        return []
    head = _locked_head(session)
    previous, seq = head.hash, head.seq
    first = seq + 1
    rows = []
    for new in events:
        seq += 1
        row = _chained_row(previous, seq, new)
        rows.append(row)
        previous = row["row_hash"]
    if dialect_name(session) == "postgresql":
        # Ids drawn from the table's own sequence up front: COPY returns nothing.
        ids = list(
            session.scalars(
                text("SELECT nextval('consent_events_id_seq') FROM generate_series(1, :n)"),
                {"n": len(rows)},
            )
        )
        for row, event_id in zip(rows, ids, strict=True):
            row["id"] = event_id
        _copy_events(session, rows)
    else:
        session.execute(insert(session, ConsentEvent.__table__), rows)
        by_seq = dict(
            session.execute(
                select(ConsentEvent.chain_seq, ConsentEvent.id).where(
                    ConsentEvent.chain_seq.between(first, seq)
                )
            ).all()
        )
        ids = [by_seq[number] for number in range(first, seq + 1)]
    head.seq, head.hash = seq, previous
    session.flush()
    return ids


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


def _copy_events(session: Session, rows: list[dict[str, Any]]) -> None:
    cursor = session.connection().connection.driver_connection.cursor()
    try:
        statement = f"COPY consent_events ({', '.join(_EVENT_COLUMNS)}) FROM STDIN"
        with cursor.copy(statement) as copy:
            for row in rows:
                values = [row[name] for name in _EVENT_COLUMNS]
                if values[_EVIDENCE] is not None:  # JSON text in COPY's text format
                    values[_EVIDENCE] = json.dumps(values[_EVIDENCE])
                copy.write_row(values)
    finally:
        cursor.close()


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
