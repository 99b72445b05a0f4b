"""A call that failed for a passing reason (429, 5xx) is made again within its
batch, after its pause, while the batch's lease holds (SYNC_IN_PLACE_RETRIES)."""

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from suppression.connectors.fakes import Fault
from suppression.connectors.fakes.meta import graph_error
from suppression.services.destinations import lease
from suppression.store.models.destinations import Destination, DestinationPush, OutboxRow

META_AUDIENCE = "23850000000000001"
ADDRESS = "jane@example.com"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def destination_env(destination_env):
    return {**destination_env, "SYNC_IN_PLACE_RETRIES": "3"}


@pytest.fixture
def pauses(clock):
    """The pauses the worker waited, in order; each moves the test clock on."""
    waited: list[float] = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds=seconds)

    sleep.waited = waited  # type: ignore[attr-defined]
    return sleep


@pytest.fixture
def worker(make_worker, pauses):
    built = make_worker(sleep=pauses)
    built.register()
    return built


@pytest.fixture
def meta_pushes(sessions):
    def count() -> int:
        with sessions() as session:
            return int(
                session.scalar(
                    select(func.count())
                    .select_from(DestinationPush)
                    .where(DestinationPush.destination == "meta")
                )
                or 0
            )

    return count


def meta_row(sessions) -> OutboxRow:
    with sessions() as session:
        row = session.scalars(select(OutboxRow).where(OutboxRow.destination == "meta")).one()
        session.expunge(row)
        return row


def meta_destination(sessions) -> Destination:
    with sessions() as session:
        destination = session.get(Destination, "meta")
        assert destination is not None
        session.expunge(destination)
        return destination


def test_a_429_is_pushed_again_after_its_retry_after_and_no_failure_is_recorded(
    worker, record, fakes, pauses, sessions, outbox_rows, meta_pushes
):
    record(ADDRESS)
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": "7"})
    (report,) = worker.run_pass(["meta"])
    assert pauses.waited == [7.0]
    assert fakes.meta.faults_served[429] == 1
    assert fakes.meta.removed[META_AUDIENCE] == {sha(ADDRESS)}
    assert (report.suppressed, report.retried_in_place, report.retrying) == (1, 1, 0)
    assert report.error is None
    assert outbox_rows(destination="meta") == 0
    assert meta_pushes() == 1
    assert meta_destination(sessions).last_error is None


def test_a_429_pauses_the_destination_for_other_workers_while_it_is_waited_out(
    make_worker, record, fakes, sessions, clock
):
    seen = []

    def sleep(seconds: float) -> None:
        seen.append(meta_destination(sessions).paused_until)
        clock.advance(seconds=seconds)

    worker = make_worker(sleep=sleep)
    worker.register()
    record(ADDRESS)
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": "20"})
    paused_from = clock()
    worker.run_pass(["meta"])
    assert seen == [paused_from + timedelta(seconds=20)]
    assert fakes.meta.removed[META_AUDIENCE] == {sha(ADDRESS)}


def test_a_503_twice_is_pushed_a_third_time_after_growing_backoffs(
    worker, record, fakes, pauses, settings, outbox_rows, meta_pushes
):
    record(ADDRESS)
    fakes.meta.fail_next(2, status=503)
    (report,) = worker.run_pass(["meta"])
    base = settings.destinations.sync.backoff_seconds
    first, second = pauses.waited
    assert base / 2 <= first <= base  # backoff_seconds(1): base, times 0.5 to 1
    assert base <= second <= 2 * base  # backoff_seconds(2)
    assert fakes.meta.removed[META_AUDIENCE] == {sha(ADDRESS)}
    assert (report.suppressed, report.retried_in_place, report.retrying) == (1, 2, 0)
    assert outbox_rows(destination="meta") == 0
    assert meta_pushes() == 1


def test_after_the_in_place_retries_the_failure_is_recorded_with_its_backoff(
    worker, record, fakes, pauses, sessions, clock, meta_pushes
):
    record(ADDRESS)
    fakes.meta.fail_next(4, status=503)
    (report,) = worker.run_pass(["meta"])
    assert len(pauses.waited) == 3
    assert fakes.meta.faults_served[503] == 4
    assert fakes.meta.removed[META_AUDIENCE] == set()
    assert (report.retried_in_place, report.retrying, report.parked) == (3, 1, 0)
    assert "HTTP 503" in (report.error or "")
    row = meta_row(sessions)
    assert row.attempts == 1
    assert row.claimed_by is None
    assert row.available_at is not None
    assert row.available_at > clock()
    assert meta_pushes() == 0
    clock.advance(hours=1)
    worker.run_pass(["meta"])
    assert fakes.meta.removed[META_AUDIENCE] == {sha(ADDRESS)}


@pytest.mark.parametrize(
    "fault",
    [
        Fault(400, graph_error(100, "(#100) Invalid parameter", kind="GraphMethodException")),
        Fault(400, graph_error(190, "Invalid OAuth access token.")),
    ],
    ids=["permanent", "auth"],
)
def test_a_refused_call_is_never_retried_in_place(worker, record, fakes, pauses, sessions, fault):
    record(ADDRESS)
    fakes.meta.fail_next(1, fault)
    (report,) = worker.run_pass(["meta"])
    assert pauses.waited == []
    assert fakes.meta.request_count == 1
    assert (report.retried_in_place, report.retrying) == (0, 1)
    assert meta_row(sessions).attempts == 1


def test_a_pause_longer_than_the_backoff_cap_is_waited_in_the_queue(
    worker, record, fakes, pauses, sessions, clock
):
    record(ADDRESS)
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": "7200"})
    asked_at = clock()
    (report,) = worker.run_pass(["meta"])
    assert pauses.waited == []
    assert report.retrying == 1
    assert meta_destination(sessions).paused_until == asked_at + timedelta(seconds=7200)
    assert meta_row(sessions).available_at == asked_at + timedelta(seconds=7200)


def test_the_lease_is_renewed_before_a_pause_it_would_not_outlast(
    make_worker, record, fakes, sessions, settings, clock
):
    lease_seconds = settings.destinations.sync.lease_seconds
    pause = 2 * lease_seconds
    claims_by_others = []

    def sleep(seconds: float) -> None:
        clock.advance(seconds=seconds)
        # At the pause's end, another worker finds nothing to take.
        with sessions() as session:
            claims_by_others.append(lease.claim(session, "meta", "worker-2", clock(), 60, 100))
            session.rollback()

    worker = make_worker(sleep=sleep)
    worker.register()
    record(ADDRESS)
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": str(int(pause))})
    (report,) = worker.run_pass(["meta"])
    assert claims_by_others == [[]]
    assert report.retried_in_place == 1
    assert fakes.meta.removed[META_AUDIENCE] == {sha(ADDRESS)}


def test_a_worker_that_lost_its_rows_does_not_retry_in_place(
    make_worker, record, fakes, sessions, settings, clock
):
    waited = []

    def sleep(seconds: float) -> None:
        waited.append(seconds)
        clock.advance(seconds=seconds)

    worker = make_worker(sleep=sleep)
    worker.register()
    record(ADDRESS)
    # The worker's lease runs out while the platform takes its time to answer
    # 429, and another worker takes the row meanwhile.
    lease_seconds = settings.destinations.sync.lease_seconds
    original_push = worker.connectors["meta"].push

    def slow_push(operation, members):
        clock.advance(seconds=lease_seconds + 1)
        with sessions() as session:
            assert lease.claim(session, "meta", "worker-2", clock(), 60, 100)
            session.commit()
        return original_push(operation, members)

    worker.connectors["meta"].push = slow_push
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": str(int(lease_seconds))})
    (report,) = worker.run_pass(["meta"])
    assert waited == []
    assert report.retried_in_place == 0
    assert meta_row(sessions).claimed_by == "worker-2"


def test_sync_now_makes_no_in_place_retry(client, admin, worker, record, fakes, sessions):
    record(ADDRESS)
    fakes.meta.fail_next(1, status=429, headers={"Retry-After": "1"})
    response = client.post("/v1/destinations/meta/sync", headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert (body["suppressed"], body["retrying"]) == (0, 1)
    assert fakes.meta.request_count == 1
    assert meta_row(sessions).last_error is not None
