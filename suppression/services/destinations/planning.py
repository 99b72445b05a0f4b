"""The sync's decisions, without I/O: what to push for a claimed batch, what the
platform's answers settle, how long a failed row waits, and what a status read
of an accepted request means for its rows.

The worker (worker/destination_sync.py) claims, pushes and records; every
choice in between is made here, from values it hands over.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from suppression.connectors.base import (
    DestinationError,
    Failure,
    FailureKind,
    Member,
    Operation,
    PushResult,
    RequestState,
    RequestStatus,
)
from suppression.connectors.settings import SyncSettings
from suppression.domain.destinations import Channel, PushOutcome
from suppression.domain.policy import PolicySettings
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.destinations.push_decisions import SubjectFacts, push_reason
from suppression.services.destinations.rows import Accepted, AwaitingRow, ClaimedRow, Done

logger = logging.getLogger(__name__)


@dataclass
class PassReport:
    """What one pass did for one destination (the sync endpoint's answer)."""

    destination: str
    claimed: int = 0
    suppressed: int = 0  # suppressions the platform confirmed
    restored: int = 0  # exclusion-list removals the platform confirmed
    accepted: int = 0  # pushes the platform accepted and processes later (not confirmed)
    processing: int = 0  # rows whose request was read and is not final yet
    not_found: int = 0  # the platform holds no such address
    unchanged: int = 0  # nothing to push: sendable, or already confirmed
    no_address: int = 0  # erased before it could be pushed
    retrying: int = 0
    parked: int = 0
    retried_in_place: int = 0  # calls pushed again within their batch after a pause
    reconciled: int = 0  # rows a full reconcile added
    pending: int = 0  # rows still waiting after the pass (retrying, paused, or not reached)
    paused_until: datetime | None = None
    error: str | None = None

    @property
    def worked(self) -> bool:
        return bool(self.claimed or self.reconciled)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def count_done(self, done: Sequence[Done]) -> None:
        for item in done:
            if item.outcome == PushOutcome.NO_ADDRESS:
                self.no_address += 1
            elif item.outcome == PushOutcome.NOT_FOUND:
                self.not_found += 1
            elif item.operation == Operation.SUPPRESS:
                self.suppressed += 1
            elif item.operation == Operation.RESTORE:
                self.restored += 1
            else:
                self.unchanged += 1


# Failed rows: how long they wait, and when they are parked ---------------------


def backoff_seconds(attempts: int, sync: SyncSettings, rng: random.Random) -> float:
    """Exponential backoff with jitter: base·2^(n-1), capped, times 0.5 to 1."""
    ceiling = min(sync.backoff_max_seconds, sync.backoff_seconds * 2 ** max(0, attempts - 1))
    return ceiling * (0.5 + rng.random() / 2)


def rate_limited_until(failure: Failure, sync: SyncSettings, now: datetime) -> datetime:
    """A 429: as long as the platform asked, else SYNC_RATE_LIMIT_SECONDS."""
    wait = failure.retry_after if failure.retry_after is not None else sync.rate_limit_seconds
    return now + timedelta(seconds=wait)


def attempt_limit(kind: FailureKind, sync: SyncSettings) -> int:
    """Attempts a row gets for this kind of failure before it is parked."""
    limit = sync.permanent_attempts if kind == FailureKind.PERMANENT else sync.max_attempts
    if kind == FailureKind.CONFIGURATION:
        limit = 1  # retrying a wrong base URL proves nothing: park, the operator acts
    return min(limit, sync.max_attempts)


@dataclass(frozen=True)
class RetryGroup:
    """Failed rows that reach the same attempt count."""

    attempts: int
    row_ids: tuple[int, ...]
    available_at: datetime | None  # None: parked until an operator retries it


def retry_groups(
    rows: Sequence[ClaimedRow],
    failure: Failure,
    sync: SyncSettings,
    rng: random.Random,
    now: datetime,
) -> list[RetryGroup]:
    """For a failure other than a 429: each row's next attempt count, and when it
    is due again (or parked), fewest attempts first."""
    limit = attempt_limit(failure.kind, sync)
    by_attempts: dict[int, list[int]] = {}
    for row in rows:
        by_attempts.setdefault(row.attempts + 1, []).append(row.id)
    groups = []
    for attempts, row_ids in sorted(by_attempts.items()):
        available_at = None
        if attempts < limit:
            delay = failure.retry_after or backoff_seconds(attempts, sync, rng)
            available_at = now + timedelta(seconds=delay)
        groups.append(RetryGroup(attempts, tuple(row_ids), available_at))
    return groups


# Retrying a failed call within its batch ---------------------------------------

# What a call may fail with and still succeed if asked again after a pause.
RETRIED_IN_PLACE = frozenset({FailureKind.RATE_LIMITED, FailureKind.TRANSIENT})


@dataclass(frozen=True)
class InPlaceRetry:
    """Members of a call to push again after `seconds`, while the batch's lease holds."""

    keys: frozenset[int]
    seconds: float
    rate_limited: bool  # a 429: the destination pauses for every worker meanwhile


def in_place_pause(failure: Failure, retry: int, sync: SyncSettings, rng: random.Random) -> float:
    """The same wait the failure would cost recorded: a 429's Retry-After (else
    SYNC_RATE_LIMIT_SECONDS), a transient failure's backoff for this retry."""
    if failure.kind == FailureKind.RATE_LIMITED:
        return failure.retry_after if failure.retry_after is not None else sync.rate_limit_seconds
    return failure.retry_after or backoff_seconds(retry, sync, rng)


def plan_in_place_retry(
    result: PushResult, retry: int, sync: SyncSettings, rng: random.Random
) -> InPlaceRetry | None:
    """Whether the members of a call that failed for a passing reason are pushed
    again at once (`retry` counts from 1), and after how long: at most
    SYNC_IN_PLACE_RETRIES times, and only for a pause within SYNC_BACKOFF_MAX_SECONDS
    (a longer one is waited in the queue, where the worker serves the others)."""
    if retry > sync.in_place_retries:
        return None
    passing = {key: f for key, f in result.failures.items() if f.kind in RETRIED_IN_PLACE}
    if not passing:
        return None
    failures = set(passing.values())
    seconds = max(in_place_pause(f, retry, sync, rng) for f in failures)
    if seconds > sync.backoff_max_seconds:
        return None
    limited = any(f.kind == FailureKind.RATE_LIMITED for f in failures)
    return InPlaceRetry(frozenset(passing), seconds, limited)


def with_retried(result: PushResult, retried: frozenset[int], again: PushResult) -> PushResult:
    """The call's result, with the answers for the retried members taken from the retry."""
    return PushResult(
        confirmed=(result.confirmed - retried) | again.confirmed,
        not_found=(result.not_found - retried) | again.not_found,
        failures={k: f for k, f in result.failures.items() if k not in retried} | again.failures,
        accepted={k: r for k, r in result.accepted.items() if k not in retried} | again.accepted,
    )


def renewed_lease(
    now: datetime, lease_until: datetime, pause: float, sync: SyncSettings
) -> datetime | None:
    """A new end for a batch's lease that would not outlast the pause, the retried
    call (SYNC_HTTP_TIMEOUT_SECONDS) and half a lease to record its answer; None
    while it does. Another worker must never take rows whose push is underway."""
    needed = now + timedelta(seconds=pause + sync.http_timeout_seconds + sync.lease_seconds / 2)
    if needed <= lease_until:
        return None
    return now + timedelta(seconds=pause + sync.http_timeout_seconds + sync.lease_seconds)


# One batch: what to push, and what the answers settle --------------------------


# A call's operation, the members it carried, and what the platform answered.
Answer = tuple[Operation, Sequence[Member], PushResult]


@dataclass
class PushPlan:
    """A claimed batch, decided: who is done without a push, who is pushed."""

    rows: dict[int, list[ClaimedRow]] = field(default_factory=dict)  # by subject
    done: list[Done] = field(default_factory=list)
    suppress: list[Member] = field(default_factory=list)
    restore: list[Member] = field(default_factory=list)

    def calls(self, batch_size: int) -> Iterator[tuple[Operation, list[Member]]]:
        """The pushes to make, suppressions first, at most `batch_size` members each."""
        for operation, members in (
            (Operation.SUPPRESS, self.suppress),
            (Operation.RESTORE, self.restore),
        ):
            for start in range(0, len(members), batch_size):
                yield operation, members[start : start + batch_size]


def open_address(vault: AddressVault, fact: SubjectFacts) -> str | None:
    """The subject's canonical address, in memory only (None: erased, or unreadable)."""
    if fact.sealed is None:
        return None
    try:
        return vault.open(fact.sealed)
    except SealError:
        logger.error("subject %d: its sealed address does not open", fact.subject_id)
        return None


def plan_batch(
    rows: Sequence[ClaimedRow],
    facts: Mapping[int, SubjectFacts],
    vault: AddressVault,
    policy: PolicySettings,
    channel: Channel,
    targets: str,
    restores: bool,
    now: datetime,
) -> PushPlan:
    """Decide each claimed subject from its state now: push a suppression, push a
    restore (`restores`: the connector keeps an exclusion list), or nothing."""
    plan = PushPlan()
    for row in rows:
        plan.rows.setdefault(row.subject_id, []).append(row)
    for subject_id, subject_rows in plan.rows.items():
        ids = tuple(r.id for r in subject_rows)
        fact = facts.get(subject_id)
        if fact is None:  # the subject is gone: nothing to tell anyone
            plan.done.append(Done(subject_id, ids))
            continue
        canonical = open_address(vault, fact)
        reason, _decision = push_reason(fact, channel, canonical, policy, now)
        held = fact.held
        if reason is not None:
            if held and held.suppressed and held.targets == targets:
                plan.done.append(Done(subject_id, ids))  # already confirmed
            elif canonical is None:
                plan.done.append(
                    Done(
                        subject_id,
                        ids,
                        None,
                        reason.value,
                        Operation.SUPPRESS,
                        PushOutcome.NO_ADDRESS,
                    )
                )
            else:
                plan.suppress.append(Member(subject_id, canonical, reason.value))
        elif held and held.suppressed and restores and canonical is not None:
            plan.restore.append(Member(subject_id, canonical, "sendable"))
        else:
            # Sendable (or nothing to undo): the destination may hold the person
            # again, so the next suppression is pushed, not assumed.
            plan.done.append(Done(subject_id, ids, suppressed=False if held else None))
    return plan


@dataclass(frozen=True)
class CallFailure:
    """A failure a push answered; `whole`: the whole call failed."""

    failure: Failure
    whole: bool = False


def failed_call(members: Sequence[Member], failure: Failure) -> PushResult:
    """The result of a call that failed as a whole: every member failed."""
    result = PushResult()
    for member in members:
        result.fail(member.key, failure)
    return result


def platform_answered(failures: Sequence[CallFailure]) -> bool:
    """No call failed as a whole or for a reason beyond a member's own (else the
    platform may be down, or asked us to wait)."""
    return not any(f.whole or f.failure.kind != FailureKind.PERMANENT for f in failures)


def keeps_draining(claimed: int, batch_size: int, failures: Sequence[CallFailure]) -> bool:
    """Whether another batch follows: this one was full, and the platform answered."""
    return claimed >= batch_size and platform_answered(failures)


@dataclass
class Settlement:
    """What a batch's answers settle: done, accepted (follow the request), failed."""

    done: list[Done]
    accepted: list[Accepted] = field(default_factory=list)
    failed: dict[Failure, list[ClaimedRow]] = field(default_factory=dict)


def settle_answers(plan: PushPlan, answers: Sequence[Answer]) -> Settlement:
    settlement = Settlement(list(plan.done))
    for operation, members, result in answers:
        suppress = operation == Operation.SUPPRESS
        for member in members:
            rows = plan.rows[member.key]
            ids = tuple(r.id for r in rows)
            if member.key in result.failures:
                settlement.failed.setdefault(result.failures[member.key], []).extend(rows)
                continue
            reason = member.reason if suppress else None
            if member.key in result.accepted:
                request_id = result.accepted[member.key]
                settlement.accepted.append(Accepted(ids, request_id, operation, reason))
                continue
            outcome = (
                PushOutcome.NOT_FOUND if member.key in result.not_found else PushOutcome.CONFIRMED
            )
            settlement.done.append(Done(member.key, ids, suppress, reason, operation, outcome))
    return settlement


# Status reads of accepted requests ---------------------------------------------


@dataclass(frozen=True)
class ReadAgain:
    """Not final, or not readable: read the request again from `at`."""

    row_ids: tuple[int, ...]
    at: datetime
    pause: bool = False  # a 429: the destination waits until `at` too


@dataclass(frozen=True)
class RequestFailed:
    rows: tuple[ClaimedRow, ...]
    failure: Failure


@dataclass(frozen=True)
class RequestSucceeded:
    """Rows of one request pushed at `requested_at`, now confirmed."""

    requested_at: datetime
    done: tuple[Done, ...]


@dataclass
class StatusPlan:
    """What the status reads of one claimed set say, in the order to record it."""

    steps: list[ReadAgain | RequestFailed | RequestSucceeded] = field(default_factory=list)
    stop: bool = False  # the platform could not be read: read the rest later
    processing: int = 0
    suppressed: int = 0
    restored: int = 0
    error: str | None = None  # the last error read, if any
    paused_until: datetime | None = None


def plan_status_reads(
    by_request: Mapping[str, Sequence[AwaitingRow]],
    statuses: Mapping[str, RequestStatus | DestinationError],
    sync: SyncSettings,
    now: datetime,
) -> StatusPlan:
    """Confirmed when final and successful, failed (retry or park) when it failed,
    left waiting when still processing. A status that cannot be read leaves the
    rows waiting, except a permanent error (the platform does not know the
    request): those are pushed again."""
    plan = StatusPlan()
    for request_id, rows in by_request.items():
        ids = tuple(r.id for r in rows)
        status = statuses[request_id]
        if isinstance(status, DestinationError) and status.kind != FailureKind.PERMANENT:
            plan.stop = True
            plan.error = status.message
            at = now + timedelta(seconds=status.retry_after or sync.status_seconds)
            limited = status.kind == FailureKind.RATE_LIMITED
            plan.steps.append(ReadAgain(ids, at, pause=limited))
            if limited:
                plan.paused_until = at
            continue
        if isinstance(status, DestinationError):
            status = RequestStatus.failed(status.failure())
        if status.state == RequestState.PROCESSING:
            plan.steps.append(ReadAgain(ids, now + timedelta(seconds=sync.status_seconds)))
            plan.processing += len(rows)
        elif status.state == RequestState.FAILED:
            failure = status.failure or Failure(FailureKind.TRANSIENT, "request failed")
            claimed = tuple(ClaimedRow(r.id, r.subject_id, r.attempts) for r in rows)
            plan.steps.append(RequestFailed(claimed, failure))
            plan.error = failure.message
        else:
            plan.steps += _succeeded(rows, plan)
    return plan


def _succeeded(rows: Sequence[AwaitingRow], plan: StatusPlan) -> list[RequestSucceeded]:
    by_read: dict[datetime, dict[int, list[AwaitingRow]]] = {}
    for row in rows:
        by_read.setdefault(row.requested_at, {}).setdefault(row.subject_id, []).append(row)
    steps = []
    for requested_at, subjects in by_read.items():
        done = []
        for subject_id, subject_rows in subjects.items():
            operation = subject_rows[0].operation
            suppress = operation == Operation.SUPPRESS
            done.append(
                Done(
                    subject_id,
                    tuple(r.id for r in subject_rows),
                    suppressed=suppress,
                    reason=subject_rows[0].reason if suppress else None,
                    operation=operation,
                    outcome=PushOutcome.CONFIRMED,
                )
            )
            if suppress:
                plan.suppressed += 1
            else:
                plan.restored += 1
        steps.append(RequestSucceeded(requested_at, tuple(done)))
    return steps
