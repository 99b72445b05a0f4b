"""The one interface every destination speaks, and what it answers.

Connectors know HTTP and their platform, nothing of our tables: they get
members (an opaque key and the canonical address, in memory only) and answer
per member whether the platform confirmed. Messages they produce are safe to
store and show: never an address, never a credential.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable


class Operation(StrEnum):
    SUPPRESS = "suppress"  # opt out (CRM) / remove from audiences, add to an exclusion list
    RESTORE = "restore"  # sendable again: take the person off the exclusion list only


class FailureKind(StrEnum):
    RATE_LIMITED = "rate_limited"  # come back after retry_after; not the member's fault
    TRANSIENT = "transient"  # 5xx, timeout, connection: retry with backoff
    AUTH = "auth"  # credentials refused or lacking permission: operator must act
    PERMANENT = "permanent"  # the platform refuses this request as such
    # Not the platform answering (a wrong base URL or route): nothing is confirmed,
    # the rows park at once and the operator fixes the settings, then retries them.
    CONFIGURATION = "configuration"


@dataclass(frozen=True, slots=True)
class Member:
    """One person to push. `email` is the canonical address: never log it."""

    key: int
    email: str
    reason: str

    def __repr__(self) -> str:
        return f"Member(key={self.key}, reason={self.reason!r})"


@dataclass(frozen=True, slots=True)
class Failure:
    kind: FailureKind
    message: str
    retry_after: float | None = None


@dataclass
class PushResult:
    """Per member: confirmed, not held by the platform at all, failed, or
    accepted: the platform took the request and processes it later, and the
    outcome is read with `request_status(request_id)` (see FollowsRequests)."""

    confirmed: set[int] = field(default_factory=set)
    not_found: set[int] = field(default_factory=set)
    failures: dict[int, Failure] = field(default_factory=dict)
    accepted: dict[int, str] = field(default_factory=dict)  # member key -> request id

    @classmethod
    def all_confirmed(cls, members: Iterable[Member]) -> PushResult:
        return cls(confirmed={m.key for m in members})

    def fail(self, key: int, failure: Failure) -> None:
        """A failure for a member replaces its success; the worse failure wins."""
        self.confirmed.discard(key)
        self.not_found.discard(key)
        self.accepted.pop(key, None)
        current = self.failures.get(key)
        if current is None or _SEVERITY[failure.kind] > _SEVERITY[current.kind]:
            self.failures[key] = failure

    def merge(self, other: PushResult) -> PushResult:
        """Both results together: a member is confirmed only if confirmed in both
        (one call per audience; all must succeed)."""
        merged = PushResult()
        for key, failure in [*self.failures.items(), *other.failures.items()]:
            merged.fail(key, failure)
        for key, request_id in [*self.accepted.items(), *other.accepted.items()]:
            if key not in merged.failures:
                merged.accepted[key] = request_id
        for key in self.confirmed | self.not_found | other.confirmed | other.not_found:
            if key in merged.failures or key in merged.accepted:
                continue
            if key in self.not_found and key in other.not_found:
                merged.not_found.add(key)
            else:
                merged.confirmed.add(key)
        return merged


_SEVERITY = {
    FailureKind.RATE_LIMITED: 0,
    FailureKind.TRANSIENT: 1,
    FailureKind.AUTH: 2,
    FailureKind.PERMANENT: 3,
    FailureKind.CONFIGURATION: 4,
}


class DestinationError(Exception):
    """The whole call failed; every member of it shares this failure."""

    kind = FailureKind.TRANSIENT

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.message = redact(message)
        self.retry_after = retry_after

    def failure(self) -> Failure:
        return Failure(self.kind, self.message, self.retry_after)


class RateLimited(DestinationError):
    kind = FailureKind.RATE_LIMITED


class TransientError(DestinationError):
    kind = FailureKind.TRANSIENT


class AuthError(DestinationError):
    kind = FailureKind.AUTH


class PermanentError(DestinationError):
    kind = FailureKind.PERMANENT


class ConfigurationError(DestinationError):
    """The answer did not come from the platform's API as configured."""

    kind = FailureKind.CONFIGURATION


@runtime_checkable
class Connector(Protocol):
    """One destination platform. `push` makes network calls: never call it with a
    database transaction open."""

    name: str
    kind: str
    batch_size: int

    @property
    def targets(self) -> tuple[str, ...]:
        """What the destination writes to (audience ids...): a change means the
        people already pushed must be pushed again."""
        ...

    @property
    def restores(self) -> bool:
        """Whether RESTORE has anything to do (an exclusion list is configured)."""
        ...

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult: ...

    def close(self) -> None: ...


class RequestState(StrEnum):
    PROCESSING = "processing"  # not final yet: ask again later
    SUCCEEDED = "succeeded"  # every member of the request is done
    FAILED = "failed"  # the request failed: its members are retried or parked


@dataclass(frozen=True, slots=True)
class RequestStatus:
    state: RequestState
    failure: Failure | None = None  # with FAILED: what to record and how to retry

    @classmethod
    def processing(cls) -> RequestStatus:
        return cls(RequestState.PROCESSING)

    @classmethod
    def succeeded(cls) -> RequestStatus:
        return cls(RequestState.SUCCEEDED)

    @classmethod
    def failed(cls, failure: Failure) -> RequestStatus:
        return cls(RequestState.FAILED, failure)


@runtime_checkable
class FollowsRequests(Protocol):
    """A destination that accepts a push and processes it later: `push` answers
    members as accepted with a request id, and the outcome is read afterwards.
    The request id is opaque to the caller, who keeps it until it is final."""

    def request_status(self, request_id: str) -> RequestStatus:
        """Where the request stands; raises DestinationError when it cannot be read."""
        ...

    def end_pass(self) -> None:
        """The pass has pushed everything it will: submit what was only collected."""
        ...


_ADDRESS = re.compile(r"[^\s/\"'<>(),;:=?&]+(?:@|%40)[^\s/\"'<>(),;:=?&]+", re.IGNORECASE)
_SECRET = re.compile(
    r"(bearer\s+|access_token=|refresh_token=|key=|token=)[^\s&\"',]+", re.IGNORECASE
)
MAX_MESSAGE = 300


def redact(text: str) -> str:
    """A platform's message made safe to store: no address, no token, bounded."""
    text = _ADDRESS.sub("[address]", text)
    text = _SECRET.sub(r"\1[secret]", text)
    text = " ".join(text.split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"
