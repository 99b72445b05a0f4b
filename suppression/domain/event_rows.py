"""Events of a bulk append as plain values, and what each needs of the chain."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

from suppression.domain.chain import LinkParts
from suppression.domain.policy import EventAction


class EventRow(NamedTuple):
    """One event of a bulk append as plain values: imports append a million of
    these, and a tuple costs a fraction of a NewEvent with its EventContext."""

    subject_id: int
    action: EventAction
    purpose: str | None
    source: str
    actor: str
    occurred_at: datetime
    recorded_at: datetime
    country: str | None = None
    evidence: Mapping[str, Any] | None = None
    ip: str | None = None
    user_agent: str | None = None
    campaign: str | None = None
    notice_version: str | None = None


class PreparedLink(NamedTuple):
    """What an event needs but its place in the chain: its link parts, and its
    evidence sealed (None without evidence). Computed ahead by `prepare_links`."""

    parts: LinkParts
    evidence_sealed: bytes | None


def facts_only(event: EventRow) -> EventRow:
    """What is kept of an event about an erased subject (services/consents/events.py)."""
    return EventRow(*event[:7])
