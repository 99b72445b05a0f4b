"""Recording consent changes and blocks: an event, then the materialised state.

The state row only moves when the event is at least as new as what it holds, in
one conditional upsert, so an older event that arrives late never wins and two
concurrent writers cannot interleave a read and a write.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, or_, update
from sqlalchemy.orm import Session

from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus
from suppression.domain.vault import AddressVault
from suppression.errors import InvalidInput
from suppression.models import Block, ConsentState, Subject
from suppression.services.dialects import insert
from suppression.services.events import EventContext, append_event

__all__ = ["EventContext", "record_block", "record_consent", "record_relationship", "set_country"]
from suppression.services.subjects import ensure_subject

LIFT_RESTRICTION = "lift_restriction"
BLOCK_ACTIONS = {kind.value for kind in BlockKind} | {LIFT_RESTRICTION}
RELATIONSHIP_ACTIONS = ("purchase", "inquiry")


def check_purpose(purpose: str, purposes: tuple[str, ...], allow_all: bool = True) -> str:
    if purpose in purposes or (allow_all and purpose == ALL_PURPOSES):
        return purpose
    choices = ", ".join((*purposes, ALL_PURPOSES) if allow_all else purposes)
    raise InvalidInput(f"unknown purpose {purpose!r}", {"purpose": [f"Must be one of: {choices}."]})


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
    event = append_event(session, subject.id, status.value, ctx, purpose, country)
    values = {
        "subject_id": subject.id,
        "purpose": purpose,
        "status": status.value,
        "changed_at": ctx.occurred_at,
        "source": ctx.source,
        "event_id": event.id,
    }
    statement = insert(session, ConsentState).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["subject_id", "purpose"],
            set_={k: statement.excluded[k] for k in ("status", "changed_at", "source", "event_id")},
            where=ConsentState.changed_at <= statement.excluded.changed_at,
        )
    )
    if country is not None:
        _update_country(session, subject.id, country, country_source, ctx.occurred_at)
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
    among equals the newer wins. Many changes go as one executemany."""
    at = bindparam("at")
    table = Subject.__table__.c  # Core, not ORM: an executemany of one conditional UPDATE
    session.execute(
        update(Subject.__table__)
        .where(
            table.id == bindparam("sid"),
            or_(
                table.country_source.is_(None),
                table.country_source < int(source),
                (table.country_source == int(source))
                & or_(table.country_changed_at.is_(None), table.country_changed_at <= at),
            ),
        )
        .values(country=bindparam("country"), country_source=int(source), country_changed_at=at),
        [{"sid": sid, "country": country, "at": when} for sid, country, when in changes],
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
    append_event(session, subject.id, "country_set", ctx, country=country)
    _update_country(session, subject.id, country, source, ctx.occurred_at)
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
    if action not in BLOCK_ACTIONS:
        raise InvalidInput(f"unknown block kind {action!r}", {"kind": ["Unknown kind."]})
    subject = ensure_subject(session, vault, canonical)
    event = append_event(session, subject.id, action, ctx, country=country)
    kind = BlockKind.RESTRICTION.value if action == LIFT_RESTRICTION else action
    values = {
        "subject_id": subject.id,
        "kind": kind,
        "is_active": action != LIFT_RESTRICTION,
        "changed_at": ctx.occurred_at,
        "source": ctx.source,
        "event_id": event.id,
    }
    statement = insert(session, Block).values(**values)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["subject_id", "kind"],
            set_={
                k: statement.excluded[k] for k in ("is_active", "changed_at", "source", "event_id")
            },
            where=Block.changed_at <= statement.excluded.changed_at,
        )
    )
    if country is not None:
        _update_country(session, subject.id, country, CountrySource.HINT, ctx.occurred_at)
    session.expire(subject)
    return subject


def record_relationship(
    session: Session, vault: AddressVault, canonical: str, kind: str, ctx: EventContext
) -> Subject:
    """A purchase or an inquiry: the basis of implied consent (soft opt-in)."""
    if kind not in RELATIONSHIP_ACTIONS:
        raise InvalidInput(f"unknown relationship {kind!r}", {"kind": ["Unknown kind."]})
    subject = ensure_subject(session, vault, canonical)
    append_event(session, subject.id, kind, ctx)
    column = Subject.last_purchase_at if kind == "purchase" else Subject.last_inquiry_at
    session.execute(
        update(Subject)
        .where(Subject.id == subject.id, or_(column.is_(None), column < ctx.occurred_at))
        .values({column: ctx.occurred_at})
        .execution_options(synchronize_session=False)
    )
    session.expire(subject)
    return subject
