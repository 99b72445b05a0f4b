"""The destination sync: drains the outbox into the platforms.

One batch is three steps, and no network call happens inside a transaction:
1. claim due rows and read their subjects' state (commit);
2. decide per subject, open the sealed address in memory, push (no transaction);
3. record the platform's answer (commit).

A row is deleted only when the platform confirmed. A platform that processes a
push after answering (Google) answers it as accepted with a request id: the
rows keep that id and stay until a status read of the request says it is final
(success: confirmed; failure: retried or parked like any failure; still
processing: read again after SYNC_STATUS_SECONDS). A pass first reads the
status of the requests that are due, then drains every enabled destination
until nothing is due, and ends with the connector's `end_pass` (the Ads API
runs its jobs). A destination pauses when it answered 429, and stops for this
pass after a failure of a whole call.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import Settings
from suppression.connectors.base import (
    Connector,
    DestinationError,
    Failure,
    FailureKind,
    FollowsRequests,
    Member,
    Operation,
    PushResult,
    RequestState,
    RequestStatus,
    redact,
)
from suppression.connectors.keap_pull import KeapStatusReader
from suppression.connectors.settings import CHANNELS, build_connector
from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.services.destinations import outbox
from suppression.services.destinations.keap_pull import KeapPull, KeapPullReport
from suppression.services.destinations.push_decisions import SubjectFacts, load_facts, push_reason
from suppression.services.destinations.reconcile import ReconcileReport, reconcile
from suppression.services.destinations.registry import (
    SealedTokenStore,
    destination_statuses,
    register_destinations,
    take_full_request,
    targets_fingerprint,
)
from suppression.services.rights.erasure import finish_pending_erasures
from suppression.store.models.destinations import Destination
from suppression.store.schema import utcnow
from suppression.worker.one_click_folding import fold_backlog

logger = logging.getLogger(__name__)
ALARM_INTERVAL = timedelta(minutes=15)
HOUSEKEEPING = timedelta(minutes=1)  # finishing erasures, the deadline alarm, when idle


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
    reconciled: int = 0  # rows a full reconcile added
    pending: int = 0  # rows still waiting after the pass (retrying, paused, or not reached)
    paused_until: datetime | None = None
    error: str | None = None

    @property
    def worked(self) -> bool:
        return bool(self.claimed or self.reconciled)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def worker_name() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{random.randrange(16**6):06x}"


class DestinationSync:
    """A worker: build it once per process, run passes, close it."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        vault: AddressVault,
        settings: Settings,
        connectors: Mapping[str, Connector] | None = None,
        clock: Callable[[], datetime] = utcnow,
        rng: random.Random | None = None,
        worker: str | None = None,
        chores: Sequence[Callable[[], object]] = (),
        keap_reader: KeapStatusReader | None = None,
    ):
        self.sessions = sessions
        # Other queues the worker drains first in every pass (confirmation mails).
        self.chores = list(chores)
        self.vault = vault
        self.settings = settings
        self.destinations = settings.destinations
        self.clock = clock
        self.rng = rng or random.Random()
        self.worker = worker or worker_name()
        if connectors is None:
            connectors = {
                name: build_connector(
                    self.destinations,
                    name,
                    lambda n: SealedTokenStore(sessions, vault, n),
                )
                for name in self.destinations.enabled
            }
        self.connectors = dict(connectors)
        self._warned_at: dict[str, datetime] = {}
        self._housekept_at: datetime | None = None
        self._released_at: dict[str, datetime] = {}
        self.targets = {name: targets_fingerprint(c.targets) for name, c in self.connectors.items()}
        self.keap_pull = self._keap_pull(keap_reader)

    def _keap_pull(self, reader: KeapStatusReader | None) -> KeapPull | None:
        """Keap's own opt-outs, spam reports and bounces, read back while Keap is
        an enabled destination (KEAP_PULL_MINUTES=0 turns the pull off)."""
        config = self.destinations.keap
        if self.destinations.keap_pull_minutes <= 0:
            return None
        if reader is None:
            if config is None or not self.destinations.is_enabled("keap"):
                return None
            pusher = self.connectors.get("keap")
            reader = KeapStatusReader(
                config,
                self.destinations.sync.http_timeout_seconds,
                # One OAuth token for pushing and reading: Keap rotates refresh tokens.
                bearer=getattr(pusher, "bearer", None),
                token_store=SealedTokenStore(self.sessions, self.vault, "keap"),
            )
        every = timedelta(minutes=self.destinations.keap_pull_minutes)
        return KeapPull(self.sessions, self.vault, reader, every, self.clock)

    def close(self) -> None:
        for connector in self.connectors.values():
            connector.close()
        if self.keap_pull is not None:
            self.keap_pull.close()

    def register(self) -> list[str]:
        with self.sessions() as session:
            needs_full = register_destinations(
                session, self.destinations, self.targets, self.clock()
            )
            session.commit()
        for name in needs_full:
            logger.info("destination %s is new or writes somewhere new: full reconcile", name)
        return needs_full

    def run_pass(
        self,
        names: Sequence[str] | None = None,
        full: bool = False,
        max_batches: int | None = None,
    ) -> list[PassReport]:
        """Register, reconcile where asked or due, then drain each destination
        (at most `max_batches` batches each, when given)."""
        self.fold_one_clicks()
        self.run_chores()
        self.register()
        self.pull_keap()
        reports = []
        for name in names or list(self.connectors):
            report = PassReport(name)
            with self.sessions() as session:
                due = take_full_request(session, name)
                session.commit()
            if full or due:
                report.reconciled = self.reconcile(name).enqueued
            self.drain(name, report, max_batches)
            with self.sessions() as session:
                report.pending = outbox.waiting_rows(session, name)
            reports.append(report)
        now = self.clock()
        idle = not any(r.worked for r in reports)
        if not idle or self._housekept_at is None or now - self._housekept_at >= HOUSEKEEPING:
            self._housekept_at = now
            self.finish_erasures()
            self.warn_overdue()
        return reports

    def fold_one_clicks(self) -> int:
        """One-click unsubscribes the web processes accepted and have not folded yet
        (one may have died): folded first, so that this pass pushes them."""
        folded = fold_backlog(self.sessions, self.vault, self.settings).folded
        if folded:
            logger.info("%d one-click unsubscribes folded into the event log", folded)
        return folded

    def pull_keap(self) -> KeapPullReport | None:
        """Keap's non-marketable addresses, at most every KEAP_PULL_MINUTES: new
        ones become events before the drain, so this pass pushes them."""
        if self.keap_pull is None:
            return None
        try:
            return self.keap_pull.run()
        except Exception:  # a pull failing must not stop the destinations
            logger.exception("Keap pull failed; it runs again when next due")
            return None

    def run_chores(self) -> None:
        for chore in self.chores:
            try:
                chore()
            except Exception:  # one queue failing must not stop the destinations
                logger.exception("sync chore %s failed; it runs again next pass", chore)

    def finish_erasures(self) -> int:
        """Erasure's second phase: drop the address of erased subjects that every
        destination has now confirmed the removal of."""
        with self.sessions() as session:
            finished = finish_pending_erasures(session, outbox.pending_removals)
            session.commit()
        if finished:
            logger.info("%d erasures finished: every destination confirmed", finished)
        return finished

    def reconcile(self, name: str) -> ReconcileReport:
        result = reconcile(
            self.sessions,
            self.vault,
            self.settings.policy,
            name,
            CHANNELS[name],
            self.destinations.purpose(name),
            self.targets[name],
            self.clock,
        )
        logger.info(
            "full reconcile of %s: %d subjects examined, %d rows added",
            name,
            result.examined,
            result.enqueued,
        )
        return result

    def drain(self, name: str, report: PassReport, max_batches: int | None = None) -> PassReport:
        connector = self.connectors.get(name)
        if connector is None:
            report.error = "not enabled"
            return report
        self._release_dead_claims(name)
        if isinstance(connector, FollowsRequests):
            self._follow_requests(name, connector, connector.batch_size, report)
        batches = 0
        try:
            while self._batch(name, connector, report):
                batches += 1
                if max_batches is not None and batches >= max_batches:
                    break
        finally:
            if isinstance(connector, FollowsRequests):
                self._end_pass(name, connector, report)
        return report

    # Requests the platform processes later ------------------------------------

    def _end_pass(self, name: str, connector: FollowsRequests, report: PassReport) -> None:
        try:
            connector.end_pass()
        except DestinationError as exc:
            # The rows keep their request: the next status read sees it unfinished.
            report.error = report.error or exc.message
            logger.warning("destination %s: ending the pass failed: %s", name, exc.message)

    def _follow_requests(
        self, name: str, connector: FollowsRequests, limit: int, report: PassReport
    ) -> None:
        """Read the status of every accepted request that is due, and settle its
        rows: confirmed when final and successful, failed (retry or park) when it
        failed, left waiting when it is still processing. A status that cannot be
        read leaves the rows waiting, except a permanent error (the platform does
        not know the request): those are pushed again."""
        sync = self.destinations.sync
        while True:
            claimed_at = self.clock()
            with self.sessions() as session:
                destination = session.get(Destination, name)
                if destination is None or not destination.enabled:
                    return
                if destination.paused_until and destination.paused_until > claimed_at:
                    report.paused_until = destination.paused_until
                    return
                rows = outbox.claim_awaiting(
                    session, name, self.worker, claimed_at, sync.lease_seconds, limit
                )
                session.commit()
            if not rows:
                return
            by_request: dict[str, list[outbox.AwaitingRow]] = {}
            for row in rows:
                by_request.setdefault(row.request_id, []).append(row)
            statuses: dict[str, RequestStatus | DestinationError] = {}
            unreadable: DestinationError | None = None
            for request_id in by_request:
                if unreadable is not None:  # an outage or a 429: read the rest later
                    statuses[request_id] = unreadable
                    continue
                try:
                    statuses[request_id] = connector.request_status(request_id)
                except DestinationError as exc:
                    statuses[request_id] = exc
                    if exc.kind != FailureKind.PERMANENT:
                        unreadable = exc
            stop = self._settle_requests(name, by_request, statuses, report)
            if stop or len(rows) < limit:
                return

    def _settle_requests(
        self,
        name: str,
        by_request: Mapping[str, Sequence[outbox.AwaitingRow]],
        statuses: Mapping[str, RequestStatus | DestinationError],
        report: PassReport,
    ) -> bool:
        """Record what the status reads said; answers whether to stop reading
        (the platform could not be read)."""
        sync = self.destinations.sync
        now = self.clock()
        stop = False
        with self.sessions() as session:
            for request_id, rows in by_request.items():
                status = statuses[request_id]
                if isinstance(status, DestinationError) and status.kind != FailureKind.PERMANENT:
                    stop = True
                    report.error = status.message
                    wait = status.retry_after or sync.status_seconds
                    outbox.read_again(
                        session, self.worker, [r.id for r in rows], now + timedelta(seconds=wait)
                    )
                    if status.kind == FailureKind.RATE_LIMITED:
                        report.paused_until = now + timedelta(seconds=wait)
                        outbox.pause(session, name, report.paused_until)
                    continue
                if isinstance(status, DestinationError):
                    status = RequestStatus.failed(status.failure())
                if status.state == RequestState.PROCESSING:
                    outbox.read_again(
                        session,
                        self.worker,
                        [r.id for r in rows],
                        now + timedelta(seconds=sync.status_seconds),
                    )
                    report.processing += len(rows)
                elif status.state == RequestState.FAILED:
                    failure = status.failure or Failure(FailureKind.TRANSIENT, "request failed")
                    claimed = [outbox.ClaimedRow(r.id, r.subject_id, r.attempts) for r in rows]
                    tally = outbox.settle_failed(
                        session, name, self.worker, now, claimed, failure, sync, self.rng
                    )
                    report.retrying += tally.retrying
                    report.parked += tally.parked
                    report.error = failure.message
                    logger.warning(
                        "destination %s: a request failed, %d rows retrying, %d parked: %s",
                        name,
                        tally.retrying,
                        tally.parked,
                        failure.message,
                    )
                else:
                    self._settle_succeeded(session, name, rows, now, report)
            session.commit()
        return stop

    def _settle_succeeded(
        self,
        session: Session,
        name: str,
        rows: Sequence[outbox.AwaitingRow],
        now: datetime,
        report: PassReport,
    ) -> None:
        by_read: dict[datetime, dict[int, list[outbox.AwaitingRow]]] = {}
        for row in rows:
            by_read.setdefault(row.requested_at, {}).setdefault(row.subject_id, []).append(row)
        for requested_at, subjects in by_read.items():
            done = []
            for subject_id, subject_rows in subjects.items():
                operation = subject_rows[0].operation
                suppress = operation == Operation.SUPPRESS.value
                done.append(
                    outbox.Done(
                        subject_id,
                        tuple(r.id for r in subject_rows),
                        suppressed=suppress,
                        reason=subject_rows[0].reason if suppress else None,
                        operation=operation,
                        outcome=outbox.CONFIRMED,
                    )
                )
                if suppress:
                    report.suppressed += 1
                else:
                    report.restored += 1
            outbox.settle_done(session, name, self.targets[name], requested_at, now, done)

    def _release_dead_claims(self, name: str) -> None:
        """On a worker's first drain (a restart after a kill), then every
        HOUSEKEEPING: rows of workers that are gone are due again at once."""
        now = self.clock()
        last = self._released_at.get(name)
        if last is not None and now - last < HOUSEKEEPING:
            return
        self._released_at[name] = now
        with self.sessions() as session:
            released = outbox.release_dead_claims(session, name, now)
            session.commit()
        if released:
            logger.info(
                "destination %s: %d rows of a worker that is gone are due again", name, released
            )

    # One batch ---------------------------------------------------------------

    def _batch(self, name: str, connector: Connector, report: PassReport) -> bool:
        sync = self.destinations.sync
        claimed_at = self.clock()
        with self.sessions() as session:
            destination = session.get(Destination, name)
            if destination is None or not destination.enabled:
                report.error = "not enabled"
                return False
            if destination.paused_until and destination.paused_until > claimed_at:
                report.paused_until = destination.paused_until
                return False
            rows = outbox.claim(
                session, name, self.worker, claimed_at, sync.lease_seconds, connector.batch_size
            )
            facts = (
                load_facts(
                    session,
                    [r.subject_id for r in rows],
                    self.destinations.purpose(name),
                    name,
                )
                if rows
                else {}
            )
            session.commit()
        if not rows:
            return False
        report.claimed += len(rows)
        plan = self._plan(name, connector, rows, facts, claimed_at)
        failures = self._push(connector, plan)
        self._record(name, plan, failures, claimed_at, report)
        whole_call_failed = any(
            f.whole or f.failure.kind != FailureKind.PERMANENT for f in failures
        )
        return len(rows) >= connector.batch_size and not whole_call_failed

    def _plan(
        self,
        name: str,
        connector: Connector,
        rows: Sequence[outbox.ClaimedRow],
        facts: Mapping[int, SubjectFacts],
        now: datetime,
    ) -> _Plan:
        plan = _Plan()
        rows_of: dict[int, list[outbox.ClaimedRow]] = {}
        for row in rows:
            rows_of.setdefault(row.subject_id, []).append(row)
        channel = CHANNELS[name]
        targets = self.targets[name]
        for subject_id, subject_rows in rows_of.items():
            plan.rows[subject_id] = subject_rows
            ids = tuple(r.id for r in subject_rows)
            fact = facts.get(subject_id)
            if fact is None:  # the subject is gone: nothing to tell anyone
                plan.done.append(outbox.Done(subject_id, ids))
                continue
            canonical = self._open(fact)
            reason, _decision = push_reason(fact, channel, canonical, self.settings.policy, now)
            held = fact.held
            if reason is not None:
                if held and held.suppressed and held.targets == targets:
                    plan.done.append(outbox.Done(subject_id, ids))  # already confirmed
                elif canonical is None:
                    plan.done.append(
                        outbox.Done(
                            subject_id, ids, None, reason.value, "suppress", outbox.NO_ADDRESS
                        )
                    )
                else:
                    plan.suppress.append(Member(subject_id, canonical, reason.value))
            elif held and held.suppressed and connector.restores and canonical is not None:
                plan.restore.append(Member(subject_id, canonical, "sendable"))
            else:
                # Sendable (or nothing to undo): the destination may hold the person
                # again, so the next suppression is pushed, not assumed.
                plan.done.append(outbox.Done(subject_id, ids, suppressed=False if held else None))
        return plan

    def _open(self, fact: SubjectFacts) -> str | None:
        if fact.sealed is None:
            return None
        try:
            return self.vault.open(fact.sealed)
        except SealError:
            logger.error("subject %d: its sealed address does not open", fact.subject_id)
            return None

    def _push(self, connector: Connector, plan: _Plan) -> list[_Failed]:
        failures: list[_Failed] = []
        for operation, members in (
            (Operation.SUPPRESS, plan.suppress),
            (Operation.RESTORE, plan.restore),
        ):
            for start in range(0, len(members), connector.batch_size):
                chunk = members[start : start + connector.batch_size]
                try:
                    result = connector.push(operation, chunk)
                except DestinationError as exc:
                    result = PushResult()
                    failure = exc.failure()
                    for member in chunk:
                        result.fail(member.key, failure)
                    failures.append(_Failed(failure, whole=True))
                except Exception as exc:  # a connector bug must not lose the rows
                    logger.error(
                        "destination %s: push failed unexpectedly (%s)",
                        connector.name,
                        type(exc).__name__,
                    )
                    failure = Failure(
                        FailureKind.TRANSIENT, redact(f"unexpected {type(exc).__name__}")
                    )
                    result = PushResult()
                    for member in chunk:
                        result.fail(member.key, failure)
                    failures.append(_Failed(failure, whole=True))
                failures += [_Failed(f) for f in result.failures.values()]
                plan.results.append((operation, chunk, result))
        return failures

    def _record(
        self,
        name: str,
        plan: _Plan,
        failures: Sequence[_Failed],
        claimed_at: datetime,
        report: PassReport,
    ) -> None:
        done = list(plan.done)
        accepted: list[outbox.Accepted] = []
        failed: dict[Failure, list[outbox.ClaimedRow]] = {}
        for operation, members, result in plan.results:
            for member in members:
                ids = tuple(r.id for r in plan.rows[member.key])
                suppress = operation == Operation.SUPPRESS
                if member.key in result.failures:
                    failed.setdefault(result.failures[member.key], []).extend(plan.rows[member.key])
                    continue
                if member.key in result.accepted:
                    reason = member.reason if suppress else None
                    request_id = result.accepted[member.key]
                    accepted.append(outbox.Accepted(ids, request_id, operation.value, reason))
                    continue
                outcome = outbox.NOT_FOUND if member.key in result.not_found else outbox.CONFIRMED
                done.append(
                    outbox.Done(
                        member.key,
                        ids,
                        suppressed=suppress,
                        reason=member.reason if suppress else None,
                        operation=operation.value,
                        outcome=outcome,
                    )
                )
        now = self.clock()
        with self.sessions() as session:
            outbox.settle_done(session, name, self.targets[name], claimed_at, now, done)
            read_at = now + timedelta(seconds=self.destinations.sync.status_seconds)
            outbox.settle_accepted(session, self.worker, claimed_at, read_at, accepted)
            for failure, rows in failed.items():
                tally = outbox.settle_failed(
                    session, name, self.worker, now, rows, failure, self.destinations.sync, self.rng
                )
                report.retrying += tally.retrying
                report.parked += tally.parked
                report.paused_until = tally.paused_until or report.paused_until
            session.commit()
        report.accepted += len(accepted)
        for item in done:
            if item.outcome == outbox.NO_ADDRESS:
                report.no_address += 1
            elif item.outcome == outbox.NOT_FOUND:
                report.not_found += 1
            elif item.operation == Operation.SUPPRESS.value:
                report.suppressed += 1
            elif item.operation == Operation.RESTORE.value:
                report.restored += 1
            else:
                report.unchanged += 1
        if failures:
            report.error = failures[0].failure.message
            logger.warning(
                "destination %s: %d rows retrying, %d parked: %s",
                name,
                report.retrying,
                report.parked,
                report.error,
            )

    # Loop and alarms ---------------------------------------------------------

    def warn_overdue(self) -> None:
        """The deadline alarm in the worker's log, at most every ALARM_INTERVAL."""
        now = self.clock()
        with self.sessions() as session:
            statuses = destination_statuses(session, self.destinations, now)
        for status in statuses:
            last = self._warned_at.get(status.name)
            if status.overdue and (last is None or now - last >= ALARM_INTERVAL):
                self._warned_at[status.name] = now
                logger.warning(
                    "destination %s: %d suppressions waiting longer than %g h (oldest %s)",
                    status.name,
                    status.overdue,
                    self.destinations.sync.deadline_hours,
                    status.oldest_pending_at,
                )

    def run_forever(
        self,
        stop: threading.Event,
        full_first: bool = False,
        on_pass: Callable[[list[PassReport]], None] | None = None,
    ) -> None:
        """Pass after pass until `stop` is set; waits poll_seconds when idle."""
        full = full_first
        while not stop.is_set():
            try:
                reports = self.run_pass(full=full)
            except Exception:
                logger.exception("sync pass failed; trying again after the poll interval")
                reports = []
            full = False
            if on_pass:
                on_pass(reports)
            if not any(r.worked for r in reports):
                stop.wait(self.destinations.sync.poll_seconds)


@dataclass(frozen=True)
class _Failed:
    failure: Failure
    whole: bool = False


class _Plan:
    def __init__(self) -> None:
        self.rows: dict[int, list[outbox.ClaimedRow]] = {}
        self.done: list[outbox.Done] = []
        self.suppress: list[Member] = []
        self.restore: list[Member] = []
        self.results: list[tuple[Operation, Sequence[Member], PushResult]] = []
