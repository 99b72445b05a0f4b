"""Status reads of the requests a platform accepted and processes later (Google).

The same three steps as a batch, and no network call inside a transaction:
claim the rows whose request is due for a read (commit); read each request's
status (no transaction); record what it said (commit). What a status means for
its rows is decided in planning.plan_status_reads.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from suppression.connectors.base import (
    DestinationError,
    FailureKind,
    FollowsRequests,
    RequestStatus,
)
from suppression.connectors.settings import SyncSettings
from suppression.services.destinations import lease, settle
from suppression.services.destinations.planning import (
    PassReport,
    ReadAgain,
    RequestFailed,
    plan_status_reads,
)
from suppression.services.destinations.rows import AwaitingRow
from suppression.store.models.destinations import Destination

logger = logging.getLogger(__name__)


class RequestFollower:
    """One worker's status reads, for every destination that follows requests."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        worker: str,
        targets: Mapping[str, str],
        sync: SyncSettings,
        clock: Callable[[], datetime],
        rng: random.Random,
    ):
        self.sessions = sessions
        self.worker = worker
        self.targets = targets
        self.sync = sync
        self.clock = clock
        self.rng = rng

    def follow(self, name: str, connector: FollowsRequests, limit: int, report: PassReport) -> None:
        """Read the status of every accepted request that is due, and settle its
        rows: confirmed when final and successful, failed (retry or park) when it
        failed, left waiting when it is still processing."""
        while True:
            claimed_at = self.clock()
            with self.sessions() as session:
                destination = session.get(Destination, name)
                if destination is None or not destination.enabled:
                    return
                if destination.paused_until and destination.paused_until > claimed_at:
                    report.paused_until = destination.paused_until
                    return
                rows = lease.claim_awaiting(
                    session, name, self.worker, claimed_at, self.sync.lease_seconds, limit
                )
                session.commit()
            if not rows:
                return
            by_request: dict[str, list[AwaitingRow]] = {}
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
            stop = self._record(name, by_request, statuses, report)
            if stop or len(rows) < limit:
                return

    def end_pass(self, name: str, connector: FollowsRequests, report: PassReport) -> None:
        try:
            connector.end_pass()
        except DestinationError as exc:
            # The rows keep their request: the next status read sees it unfinished.
            report.error = report.error or exc.message
            logger.warning("destination %s: ending the pass failed: %s", name, exc.message)

    def _record(
        self,
        name: str,
        by_request: Mapping[str, Sequence[AwaitingRow]],
        statuses: Mapping[str, RequestStatus | DestinationError],
        report: PassReport,
    ) -> bool:
        """Record what the status reads said; answers whether to stop reading
        (the platform could not be read)."""
        now = self.clock()
        plan = plan_status_reads(by_request, statuses, self.sync, now)
        with self.sessions() as session:
            for step in plan.steps:
                if isinstance(step, ReadAgain):
                    settle.read_again(session, self.worker, step.row_ids, step.at)
                    if step.pause:
                        settle.pause(session, name, step.at)
                elif isinstance(step, RequestFailed):
                    failure = step.failure
                    tally = settle.settle_failed(
                        session, name, self.worker, now, step.rows, failure, self.sync, self.rng
                    )
                    report.retrying += tally.retrying
                    report.parked += tally.parked
                    logger.warning(
                        "destination %s: a request failed, %d rows retrying, %d parked: %s",
                        name,
                        tally.retrying,
                        tally.parked,
                        failure.message,
                    )
                else:
                    settle.settle_done(
                        session, name, self.targets[name], step.requested_at, now, step.done
                    )
            session.commit()
        report.processing += plan.processing
        report.suppressed += plan.suppressed
        report.restored += plan.restored
        if plan.error is not None:
            report.error = plan.error
        report.paused_until = plan.paused_until or report.paused_until
        return plan.stop
