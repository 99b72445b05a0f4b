"""The access log: every look at a subject's data, through the pages or the API,
and every check of a whole send list on the staff page or from a shell.

Who (`staff:<username>`, `api_key:<name>` or `cli:<user>`), which subject (none
when the address looked up is not stored; the address itself is never kept),
when, through which channel, and why when the person said why. A list check
keeps the purpose and the number of rows checked, and nothing of the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.store.models import AccessLogEntry

MAX_REASON = 500
PAGE_SIZE = 50


class AccessAction(StrEnum):
    LOOKUP = "lookup"  # a search by address
    VIEW = "view"  # a subject opened again by its id (a link, a reload)
    EXPORT = "export"  # every stored fact, for an access or portability request
    LIST_CHECK = "list_check"  # a whole send list checked (no subject, no address)


class AccessChannel(StrEnum):
    PAGE = "page"
    API = "api"
    CLI = "cli"


@dataclass(frozen=True)
class Accessor:
    """Who is looking, and from where."""

    actor: str
    channel: AccessChannel
    ip: str | None = None


def record_access(
    session: Session,
    accessor: Accessor,
    action: AccessAction,
    subject_id: int | None,
    now: datetime,
    reason: str | None = None,
) -> AccessLogEntry:
    reason = (reason or "").strip()[:MAX_REASON] or None
    entry = AccessLogEntry(
        occurred_at=now,
        actor=accessor.actor[:200],
        channel=accessor.channel.value,
        action=action.value,
        subject_id=subject_id,
        reason=reason,
        ip=accessor.ip,
    )
    session.add(entry)
    session.flush()
    return entry


def record_list_check(
    session: Session, accessor: Accessor, purpose: str, rows: int, now: datetime
) -> AccessLogEntry:
    """One check of a whole list: who, when, for which purpose, how many rows."""
    entry = AccessLogEntry(
        occurred_at=now,
        actor=accessor.actor[:200],
        channel=accessor.channel.value,
        action=AccessAction.LIST_CHECK.value,
        subject_id=None,
        ip=accessor.ip,
        purpose=purpose,
        row_count=rows,
    )
    session.add(entry)
    session.flush()
    return entry


def access_entries_for(session: Session, subject_id: int) -> list[AccessLogEntry]:
    """Every access to one subject, oldest first (for the subject's own export)."""
    return list(
        session.scalars(
            select(AccessLogEntry)
            .where(AccessLogEntry.subject_id == subject_id)
            .order_by(AccessLogEntry.occurred_at, AccessLogEntry.id)
        )
    )


@dataclass(frozen=True)
class AccessPage:
    entries: list[AccessLogEntry]
    next_before: int | None  # pass as `before` for the next (older) page


def list_access(
    session: Session,
    limit: int = PAGE_SIZE,
    before: int | None = None,
    actor: str | None = None,
    subject_id: int | None = None,
) -> AccessPage:
    """Newest first, a page at a time (keyset on the id), optionally filtered."""
    query = select(AccessLogEntry).order_by(AccessLogEntry.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(AccessLogEntry.id < before)
    if actor:
        query = query.where(AccessLogEntry.actor == actor)
    if subject_id is not None:
        query = query.where(AccessLogEntry.subject_id == subject_id)
    rows = list(session.scalars(query))
    more = len(rows) > limit
    rows = rows[:limit]
    return AccessPage(rows, rows[-1].id if more and rows else None)
