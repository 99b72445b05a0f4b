"""The destination sync: drains the outbox into the platforms.

One batch is three steps, and no network call happens inside a transaction:
1. claim due rows and read their subjects' state (commit);
2. decide per subject, open the sealed address in memory, push (no transaction);
3. record the platform's answer (commit).

A row is deleted only when the platform confirmed. A platform that processes a
push after answering (Google) answers it as accepted with a request id: the
rows keep that id and stay until a status read of the request says it is final
(success: confirmed; failure: retried or parked like any failure; still
processing: read again after SYNC_STATUS_SECONDS; worker/request_status.py).
What each batch pushes and what the answers settle is decided without I/O in
services/destinations/planning.py. A pass first reads the status of the
requests that are due, then drains every enabled destination
until nothing is due, and ends with the connector's `end_pass` (the Ads API
runs its jobs). A call that answered 429 or a 5xx is made again after its
pause while the batch's lease holds (SYNC_IN_PLACE_RETRIES), so that a fault
costs its pause and not another batch cycle; once those are spent, the failure
is recorded: the destination pauses when it answered 429, and stops for this
pass after a failure of a whole call.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

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
    redact,
)
from suppression.connectors.keap_pull import KeapStatusReader
from suppression.connectors.settings import CHANNELS, build_connector
from suppression.domain.vault import AddressVault
from suppression.services.destinations import lease, settle
from suppression.services.destinations.keap_pull import KeapPullReport
from suppression.services.destinations.planning import (
    Answer,
    CallFailure,
    InPlaceRetry,
    PassReport,
    PushPlan,
    failed_call,
    keeps_draining,
    plan_batch,
    plan_in_place_retry,
    platform_answered,
    renewed_lease,
    settle_answers,
    with_retried,
)
from suppression.services.destinations.push_decisions import SubjectFacts, load_facts
from suppression.services.destinations.queue_status import pending_removals, waiting_rows
from suppression.services.destinations.reconcile import CHUNK as RECONCILE_CHUNK
from suppression.services.destinations.reconcile import (
    Reconcile,
    ReconcileReport,
    ReconcileTakenOver,
    take_reconcile,
)
from suppression.services.destinations.registry import (
    destination_statuses,
    register_destinations,
    take_full_request,
    targets_fingerprint,
)
from suppression.services.destinations.rows import ClaimedRow
from suppression.services.rights.erasure import finish_pending_erasures
from suppression.store.models.destinations import Destination
from suppression.store.schema import utcnow
from suppression.worker.keap_pulling import build_keap_pull, run_keap_pull
from suppression.worker.one_click_folding import fold_backlog
from suppression.worker.request_status import RequestFollower
from suppression.worker.sealed_tokens import SealedTokenStore

logger = logging.getLogger(__name__)
ALARM_INTERVAL = timedelta(minutes=15)
HOUSEKEEPING = timedelta(minutes=1)  # finishing erasures, the deadline alarm, when idle


@dataclass(frozen=True)
class WholeCallFailure:
    """A push that raised: every member of the call shares its failure."""

    failure: Failure
    retryable: bool  # the platform answered; False for a connector's own bug


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
        in_place_retries: int | None = None,
        sleep: Callable[[float], object] | None = None,
    ):
        """`in_place_retries`: SYNC_IN_PLACE_RETRIES unless given (0 where a
        request waits for the pass); `sleep` waits out a failed call's pause
        (by default until then or until `run_forever` is told to stop)."""
        self.sessions = sessions
        # Other queues the worker drains first in every pass (confirmation mails).
        self.chores = list(chores)
        self.vault = vault
        self.settings = settings
        self.destinations = settings.destinations
        self.clock = clock
        self.rng = rng or random.Random()
        self.worker = worker or worker_name()
        self.in_place_retries = (
            self.destinations.sync.in_place_retries
            if in_place_retries is None
            else in_place_retries
        )
        self._stop = threading.Event()
        self.sleep = sleep or self._wait
        if connectors is None:
            tokens = partial(SealedTokenStore, sessions, vault)
            enabled = self.destinations.enabled
            connectors = {n: build_connector(self.destinations, n, tokens) for n in enabled}
        self.connectors = dict(connectors)
        self._warned_at: dict[str, datetime] = {}
        self._housekept_at: datetime | None = None
        self._released_at: dict[str, datetime] = {}
        self.targets = {name: targets_fingerprint(c.targets) for name, c in self.connectors.items()}
        self.keap_pull = build_keap_pull(
            self.destinations, self.connectors, sessions, vault, keap_reader
        )
        self.requests = RequestFollower(
            sessions, self.worker, self.targets, self.destinations.sync, clock, self.rng
        )

    def _wait(self, seconds: float) -> None:
        self._stop.wait(seconds)

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
            if name in self.connectors:
                self._release_dead_claims(name)
            # A new reconcile when asked or due; else one a killed worker left.
            reconciled = self.reconcile(name, full or due, report, max_batches)
            report.reconciled = reconciled.enqueued
            self.drain(name, report, max_batches)
            with self.sessions() as session:
                report.pending = waiting_rows(session, name)
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
            return run_keap_pull(self.sessions, self.keap_pull, self.clock)
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
            finished = finish_pending_erasures(session, pending_removals)
            session.commit()
        if finished:
            logger.info("%d erasures finished: every destination confirmed", finished)
        return finished

    def reconcile(
        self,
        name: str,
        start: bool = True,
        report: PassReport | None = None,
        max_pushes: int | None = None,
    ) -> ReconcileReport:
        """A full reconcile (`start`), or the rest of one a worker that is gone
        left; nothing when none is underway or another worker runs it. One
        transaction per chunk of subjects, whose rows this worker pushes at once
        (counted in `report`), safe to interrupt and resume.

        Once a push fails for the platform's reason (down, rate-limited), or
        `max_pushes` chunks were pushed (a request waits), the rest is queued for
        the drain, which honours the backoff and the pause."""
        connector = self.connectors.get(name)
        if connector is None:  # not enabled here: nothing to compare with
            return ReconcileReport()
        job = Reconcile(
            self.vault,
            self.settings.policy,
            name,
            CHANNELS[name],
            self.destinations.purpose(name),
            self.targets[name],
            self.worker,
            # A chunk's rows are pushed under one lease: at most a batch of them.
            chunk=min(RECONCILE_CHUNK, connector.batch_size),
        )
        lease_seconds = timedelta(seconds=self.destinations.sync.lease_seconds)
        now = self.clock()
        with self.sessions() as session:
            resume = take_reconcile(session, name, self.worker, now, now + lease_seconds, start)
            destination = session.get(Destination, name)
            session.commit()
        if resume is None:
            return job.report
        job.last_id = resume
        report = report or PassReport(name)
        paused_until = destination.paused_until if destination else None
        push = paused_until is None or paused_until <= now
        pushes = 0
        try:
            # Stopping (SIGTERM) leaves the rest to the next worker, after the resume point.
            while not self._stop.is_set():
                claimed_at = self.clock()
                with self.sessions() as session:
                    chunk = job.step(session, self.clock, claimed_at + lease_seconds, push)
                    session.commit()
                if chunk is None:
                    break
                if chunk.rows:
                    report.claimed += len(chunk.rows)
                    failures = self._push_rows(
                        name, connector, chunk.rows, chunk.facts, claimed_at, report
                    )
                    pushes += 1
                    push = platform_answered(failures) and pushes != max_pushes
        except ReconcileTakenOver:
            logger.info("full reconcile of %s: another worker runs it now", name)
        summary = job.report
        message = "full reconcile of %s: %d subjects examined, %d rows added"
        logger.info(message, name, summary.examined, summary.enqueued)
        return summary

    def drain(self, name: str, report: PassReport, max_batches: int | None = None) -> PassReport:
        connector = self.connectors.get(name)
        if connector is None:
            report.error = "not enabled"
            return report
        self._release_dead_claims(name)
        if isinstance(connector, FollowsRequests):
            self.requests.follow(name, connector, connector.batch_size, report)
        batches = 0
        try:
            while self._batch(name, connector, report):
                batches += 1
                if max_batches is not None and batches >= max_batches:
                    break
        finally:
            if isinstance(connector, FollowsRequests):
                self.requests.end_pass(name, connector, report)
        return report

    def _release_dead_claims(self, name: str) -> None:
        """On a worker's first drain (a restart after a kill), then every
        HOUSEKEEPING: rows of workers that are gone are due again at once."""
        now = self.clock()
        last = self._released_at.get(name)
        if last is not None and now - last < HOUSEKEEPING:
            return
        self._released_at[name] = now
        with self.sessions() as session:
            released = lease.release_dead_claims(session, name, now)
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
            rows = lease.claim(
                session, name, self.worker, claimed_at, sync.lease_seconds, connector.batch_size
            )
            subject_ids = [r.subject_id for r in rows]
            purpose = self.destinations.purpose(name)
            facts = load_facts(session, subject_ids, purpose, name) if rows else {}
            session.commit()
        if not rows:
            return False
        report.claimed += len(rows)
        failures = self._push_rows(name, connector, rows, facts, claimed_at, report)
        return keeps_draining(len(rows), connector.batch_size, failures)

    def _push_rows(
        self,
        name: str,
        connector: Connector,
        rows: Sequence[ClaimedRow],
        facts: Mapping[int, SubjectFacts],
        claimed_at: datetime,
        report: PassReport,
    ) -> list[CallFailure]:
        """Decide, push and record rows leased at `claimed_at`; answers the
        failures recorded."""
        plan = plan_batch(
            rows,
            facts,
            self.vault,
            self.settings.policy,
            CHANNELS[name],
            self.targets[name],
            connector.restores,
            claimed_at,
        )
        lease_until = claimed_at + timedelta(seconds=self.destinations.sync.lease_seconds)
        answers, failures, retried = self._push(name, connector, plan, lease_until)
        report.retried_in_place += retried
        self._record(name, plan, answers, failures, claimed_at, report)
        return failures

    def _push(
        self, name: str, connector: Connector, plan: PushPlan, lease_until: datetime
    ) -> tuple[list[Answer], list[CallFailure], int]:
        """Every call of the plan; a call that failed for a passing reason (429,
        5xx, timeout) is made again after its pause while the batch's lease holds,
        at most `in_place_retries` times. Answers the calls' answers, the failures
        left, and how many calls were made again."""
        answers: list[Answer] = []
        failures: list[CallFailure] = []
        retried = 0
        for operation, chunk in plan.calls(connector.batch_size):
            result, whole = self._call(connector, operation, chunk)
            for attempt in range(1, self.in_place_retries + 1):
                if whole is not None and not whole.retryable:
                    break
                retry = plan_in_place_retry(result, attempt, self.destinations.sync, self.rng)
                if retry is None:
                    break
                held_until = self._hold_through(name, plan, retry, lease_until)
                if held_until is None or self._stop.is_set():
                    break
                lease_until = held_until
                self.sleep(retry.seconds)
                if self._stop.is_set():  # stopping: record the failure, the rows wait
                    break
                members = [m for m in chunk if m.key in retry.keys]
                again, whole = self._call(connector, operation, members)
                result = with_retried(result, retry.keys, again)
                retried += 1
            if whole is not None:
                failures.append(CallFailure(whole.failure, whole=True))
            failures += [CallFailure(f) for f in result.failures.values()]
            answers.append((operation, chunk, result))
        return answers, failures, retried

    def _call(
        self, connector: Connector, operation: Operation, members: Sequence[Member]
    ) -> tuple[PushResult, WholeCallFailure | None]:
        """One push; a call that raised answers every member failed."""
        try:
            return connector.push(operation, members), None
        except DestinationError as exc:  # the platform's error: keep the rows
            failure = exc.failure()
            return failed_call(members, failure), WholeCallFailure(failure, retryable=True)
        except Exception as exc:  # a connector bug: keep the rows, asking again proves nothing
            logger.error(
                "destination %s: push failed unexpectedly (%s)",
                connector.name,
                type(exc).__name__,
            )
            failure = Failure(FailureKind.TRANSIENT, redact(f"unexpected {type(exc).__name__}"))
            return failed_call(members, failure), WholeCallFailure(failure, retryable=False)

    def _hold_through(
        self, name: str, plan: PushPlan, retry: InPlaceRetry, lease_until: datetime
    ) -> datetime | None:
        """Before pausing for a retry: a 429 pauses the destination for the other
        workers too, and a lease that would run out meanwhile is renewed. Answers
        the lease's end, or None when this worker no longer holds every row (the
        retry is not made; the failure is recorded on the rows it still holds)."""
        now = self.clock()
        sync = self.destinations.sync
        until = renewed_lease(now, lease_until, retry.seconds, sync)
        if until is None and not retry.rate_limited:
            return lease_until
        row_ids = [row.id for rows in plan.rows.values() for row in rows]
        with self.sessions() as session:
            if retry.rate_limited:
                settle.pause(session, name, now + timedelta(seconds=retry.seconds))
            held = len(row_ids)
            if until is not None:
                held = lease.renew(session, self.worker, row_ids, until)
            session.commit()
        if held < len(row_ids):
            logger.warning("destination %s: rows of a batch were taken over; no retry", name)
            return None
        return until or lease_until

    def _record(
        self,
        name: str,
        plan: PushPlan,
        answers: Sequence[Answer],
        failures: Sequence[CallFailure],
        claimed_at: datetime,
        report: PassReport,
    ) -> None:
        settled = settle_answers(plan, answers)
        sync = self.destinations.sync
        now = self.clock()
        with self.sessions() as session:
            settle.settle_done(session, name, self.targets[name], claimed_at, now, settled.done)
            read_at = now + timedelta(seconds=sync.status_seconds)
            settle.settle_accepted(session, self.worker, claimed_at, read_at, settled.accepted)
            for failure, rows in settled.failed.items():
                tally = settle.settle_failed(
                    session, name, self.worker, now, rows, failure, sync, self.rng
                )
                report.retrying += tally.retrying
                report.parked += tally.parked
                report.paused_until = tally.paused_until or report.paused_until
            session.commit()
        report.accepted += len(settled.accepted)
        report.count_done(settled.done)
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
        self._stop = stop  # also ends a pause before an in-place retry
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
