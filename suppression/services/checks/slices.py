"""What a helper process is given to decide one slice of a check list, and what
the check needs of the helpers (worker/check_helpers.py runs them)."""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from suppression.domain.policy import PolicySettings
from suppression.store.raw_connections import Connect

Answer = tuple[bytes, list[bytes | None] | None]  # a helper's decision codes and digests


@dataclass(frozen=True)
class SliceJob:
    connect: Connect
    index_key: bytes
    policy: PolicySettings
    purpose: str
    now: datetime
    raws: list[str | None]
    hints: list[str | None]
    with_sha256: bool
    pending: frozenset[bytes]  # one-click opt-outs not yet folded (services/consents/intake.py)


class SliceHelpers(Protocol):
    """A pool of helper processes, as the check uses it."""

    processes: int

    def submit(self, job: SliceJob) -> Future[Answer]: ...

    def reset(self) -> None: ...
