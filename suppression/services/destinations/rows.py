"""What the sync carries between the outbox and the platforms: the rows it
leased, and the answers it settles them with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from suppression.connectors.base import Operation
from suppression.domain.destinations import PushOutcome


@dataclass(frozen=True)
class ClaimedRow:
    id: int
    subject_id: int
    attempts: int


@dataclass(frozen=True)
class AwaitingRow:
    """A row whose push the platform accepted and processes later."""

    id: int
    subject_id: int
    attempts: int
    request_id: str
    operation: Operation
    reason: str | None
    requested_at: datetime


@dataclass(frozen=True)
class Accepted:
    """Rows of one subject whose push the platform accepted under `request_id`."""

    row_ids: tuple[int, ...]
    request_id: str
    operation: Operation
    reason: str | None


@dataclass(frozen=True)
class Done:
    """A subject the destination is finished with, for now."""

    subject_id: int
    row_ids: tuple[int, ...]
    suppressed: bool | None = None  # the destination's state now; None: unchanged
    reason: str | None = None
    operation: Operation | None = None  # a push the platform answered
    outcome: PushOutcome | None = None


@dataclass
class FailureTally:
    retrying: int = 0
    parked: int = 0
    paused_until: datetime | None = None
