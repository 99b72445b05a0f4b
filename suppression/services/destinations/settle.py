"""Settling leased outbox rows with the platform's answer.

A row is deleted only when the platform confirmed (`settle_done`); an accepted
push keeps its rows with the request to follow (`settle_accepted`, then
`read_again` while it is processing); a failure waits with exponential backoff
and jitter, a 429 waits as long as asked, and after too many attempts the row is
parked (failed_at) until an operator retries it; a configuration failure (the
answer did not come from the platform) parks it at once (`settle_failed`, its
arithmetic in `planning`).

Services flush, never commit: the caller's edge commits.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from suppression.connectors.base import Failure, FailureKind
from suppression.connectors.settings import SyncSettings
from suppression.domain.destinations import PushOutcome
from suppression.services.destinations.planning import rate_limited_until, retry_groups
from suppression.services.destinations.rows import Accepted, ClaimedRow, Done, FailureTally
from suppression.store.dialects import bulk_insert, execute_dml, id_filters, insert
from suppression.store.models.destinations import (
    Destination,
    DestinationPush,
    DestinationSubject,
    OutboxRow,
)


def settle_accepted(
    session: Session,
    worker: str,
    requested_at: datetime,
    read_at: datetime,
    accepted: Sequence[Accepted],
) -> None:
    """Keep accepted rows with the request to follow; its status is read from
    `read_at` on. The rows stay until the request's final status."""
    groups: dict[tuple[str, str, str | None], list[int]] = {}
    for item in accepted:
        groups.setdefault((item.request_id, item.operation, item.reason), []).extend(item.row_ids)
    for (request_id, operation, reason), row_ids in groups.items():
        for ids in id_filters(session, OutboxRow.id, sorted(row_ids)):
            session.execute(
                update(OutboxRow)
                .where(ids, OutboxRow.claimed_by == worker)
                .values(
                    request_id=request_id,
                    request_operation=operation,
                    request_reason=reason,
                    requested_at=requested_at,
                    claimed_by=None,
                    claimed_until=None,
                    available_at=read_at,
                )
                .execution_options(synchronize_session=False)
            )


def read_again(session: Session, worker: str, row_ids: Sequence[int], at: datetime) -> None:
    """The request is not final yet: release its rows until the next status read."""
    for ids in id_filters(session, OutboxRow.id, sorted(row_ids)):
        session.execute(
            update(OutboxRow)
            .where(ids, OutboxRow.claimed_by == worker)
            .values(claimed_by=None, claimed_until=None, available_at=at)
            .execution_options(synchronize_session=False)
        )


def settle_done(
    session: Session,
    destination: str,
    targets: str,
    observed_at: datetime,
    now: datetime,
    done: Sequence[Done],
) -> None:
    if not done:
        return
    row_ids = sorted(row for item in done for row in item.row_ids)
    for ids in id_filters(session, OutboxRow.id, row_ids):
        session.execute(delete(OutboxRow).where(ids).execution_options(synchronize_session=False))
    # Parked rows of these subjects are settled by this newer answer.
    subjects = sorted({item.subject_id for item in done})
    for chunk in id_filters(session, OutboxRow.subject_id, subjects):
        session.execute(
            delete(OutboxRow)
            .where(
                chunk,
                OutboxRow.destination == destination,
                OutboxRow.failed_at.is_not(None),
                OutboxRow.id < row_ids[-1],
            )
            .execution_options(synchronize_session=False)
        )
    states = [
        {
            "destination": destination,
            "subject_id": item.subject_id,
            "suppressed": item.suppressed,
            "reason": item.reason if item.suppressed else None,
            "targets": targets,
            "observed_at": observed_at,
            "confirmed_at": now,
        }
        for item in done
        if item.suppressed is not None
    ]
    subject_table = DestinationSubject.__table__

    def newer_wins(statement: Any) -> Any:
        return statement.on_conflict_do_update(
            index_elements=["destination", "subject_id"],
            set_={
                key: statement.excluded[key]
                for key in ("suppressed", "reason", "targets", "observed_at", "confirmed_at")
            },
            # A worker that read the subject earlier never overwrites a later one.
            where=subject_table.c.observed_at <= statement.excluded.observed_at,
        )

    # PostgreSQL: staged by COPY, one INSERT ... SELECT each (SQLite: executemany).
    bulk_insert(session, subject_table, states, newer_wins)
    pushes = [
        {
            "destination": destination,
            "subject_id": item.subject_id,
            "operation": item.operation,
            "reason": item.reason,
            "outcome": item.outcome,
            "pushed_at": now,
        }
        for item in done
        if item.operation is not None
    ]
    bulk_insert(session, DestinationPush.__table__, pushes, lambda statement: statement)
    if any(item.outcome in (PushOutcome.CONFIRMED, PushOutcome.NOT_FOUND) for item in done):
        session.execute(
            update(Destination).where(Destination.name == destination).values(last_success_at=now)
        )


_NO_REQUEST: dict[str, Any] = {
    "request_id": None,
    "request_operation": None,
    "request_reason": None,
    "requested_at": None,
}


def settle_failed(
    session: Session,
    destination: str,
    worker: str,
    now: datetime,
    rows: Sequence[ClaimedRow],
    failure: Failure,
    sync: SyncSettings,
    rng: random.Random,
) -> FailureTally:
    """Release failed rows for a later attempt, or park them after too many.

    A 429 is not the rows' fault: it costs no attempt, the rows wait as long as
    the platform asked, and the destination pauses for everyone. Rows that
    awaited an accepted request's outcome go back to being pushed.
    """
    tally = FailureTally()
    if not rows:
        return tally
    mine = OutboxRow.claimed_by == worker
    if failure.kind == FailureKind.RATE_LIMITED:
        until = rate_limited_until(failure, sync, now)
        for ids in id_filters(session, OutboxRow.id, sorted(row.id for row in rows)):
            session.execute(
                update(OutboxRow)
                .where(ids, mine)
                .values(
                    claimed_by=None,
                    claimed_until=None,
                    available_at=until,
                    last_error=failure.message,
                    **_NO_REQUEST,
                )
                .execution_options(synchronize_session=False)
            )
        session.execute(
            update(Destination).where(Destination.name == destination).values(paused_until=until)
        )
        tally.retrying = len(rows)
        tally.paused_until = until
    else:
        for group in retry_groups(rows, failure, sync, rng, now):
            values: dict[str, object] = {
                "attempts": group.attempts,
                "claimed_by": None,
                "claimed_until": None,
                "last_error": failure.message,
                **_NO_REQUEST,
            }
            if group.available_at is None:
                values["failed_at"] = now
                tally.parked += len(group.row_ids)
            else:
                values["available_at"] = group.available_at
                tally.retrying += len(group.row_ids)
            for chunk in id_filters(session, OutboxRow.id, sorted(group.row_ids)):
                session.execute(
                    update(OutboxRow)
                    .where(chunk, mine)
                    .values(**values)
                    .execution_options(synchronize_session=False)
                )
    session.execute(
        update(Destination)
        .where(Destination.name == destination)
        .values(last_error=failure.message, last_error_at=now)
    )
    return tally


def pause(session: Session, destination: str, until: datetime) -> None:
    """The platform asked us to wait (429): no call to it before `until`."""
    session.execute(
        update(Destination).where(Destination.name == destination).values(paused_until=until)
    )


def retry_parked(session: Session, destination: str | None = None) -> int:
    """Put parked rows back in the queue with a fresh attempt budget (operator)."""
    statement = (
        update(OutboxRow)
        .where(OutboxRow.failed_at.is_not(None))
        .values(failed_at=None, attempts=0, available_at=None, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    if destination is not None:
        statement = statement.where(OutboxRow.destination == destination)
    return int(execute_dml(session, statement).rowcount or 0)


def settle_reported_by_platform(
    session: Session, destination: str, subject_id: int, reason: str, now: datetime
) -> None:
    """The platform itself reported this person suppressed (Keap's own opt-out list):
    nothing is pushed back to it. Its waiting row goes, and it is recorded as
    holding the person suppressed, so the drain does not echo the change."""
    targets = session.scalar(
        select(Destination.targets).where(
            Destination.name == destination, Destination.enabled.is_(True)
        )
    )
    if targets is None:
        return
    session.execute(
        delete(OutboxRow)
        .where(
            OutboxRow.destination == destination,
            OutboxRow.subject_id == subject_id,
            OutboxRow.claimed_by.is_(None),
            OutboxRow.failed_at.is_(None),
        )
        .execution_options(synchronize_session=False)
    )
    statement = insert(session, DestinationSubject).values(
        destination=destination,
        subject_id=subject_id,
        suppressed=True,
        reason=reason,
        targets=targets,
        observed_at=now,
        confirmed_at=now,
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["destination", "subject_id"],
            set_={
                key: statement.excluded[key]
                for key in ("suppressed", "reason", "targets", "observed_at", "confirmed_at")
            },
            where=DestinationSubject.observed_at <= statement.excluded.observed_at,
        )
    )
