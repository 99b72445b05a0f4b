"""A full reconcile pushes its own decisions: the rows it queues are leased to
the reconciling worker and pushed at once, and `reconcile_progress` lets another
worker continue a reconcile whose worker was killed."""

import hashlib
import json
import threading
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from suppression.services.destinations import lease
from suppression.services.destinations.reconcile import take_reconcile
from suppression.store.models.destinations import ReconcileProgress

META_AUDIENCE = "23850000000000001"
ADDRESSES = [f"person{i}@example.com" for i in range(5)]


class Killed(BaseException):
    """The worker process dies here (nothing in the worker catches it)."""


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def destination_env(destination_env):
    # Chunks of two subjects: five subjects are three chunks.
    return {**destination_env, "META_BATCH_SIZE": "2"}


@pytest.fixture
def subjects(record):
    """Five opted-out people recorded before any destination was registered:
    only a full reconcile finds them."""
    return [record(address) for address in ADDRESSES]


def hashes_pushed(fake) -> Counter:
    """How many times each hash reached the audience."""
    pushed: Counter = Counter()
    for request in fake.requests:
        if request.method == "DELETE" and request.path.endswith(f"/{META_AUDIENCE}/users"):
            pushed.update(json.loads(request.body["payload"])["data"])
    return pushed


def progress_rows(sessions, destination: str = "meta") -> int:
    """Reconciles of the destination underway (0 or 1)."""
    query = select(func.count()).where(ReconcileProgress.destination == destination)
    with sessions() as session:
        return int(session.scalar(query) or 0)


def test_a_new_destination_s_first_sync_pushes_the_reconcile_s_decisions_directly(
    subjects, make_worker, fakes, sessions, outbox_rows, monkeypatch
):
    drained = []
    claim = lease.claim

    def counting_claim(*args, **kwargs):
        rows = claim(*args, **kwargs)
        drained.extend(rows)
        return rows

    monkeypatch.setattr(lease, "claim", counting_claim)
    worker = make_worker()
    (report,) = worker.run_pass(["meta"])
    assert (report.reconciled, report.claimed, report.suppressed) == (5, 5, 5)
    assert drained == []  # no row was claimed, read and decided a second time
    assert hashes_pushed(fakes.meta) == Counter({sha(a): 1 for a in ADDRESSES})
    assert fakes.meta.batch_sizes == [2, 2, 1]
    assert outbox_rows(destination="meta") == 0
    assert progress_rows(sessions) == 0


def test_a_reconcile_interrupted_by_a_kill_is_resumed_and_pushes_everyone_exactly_once(
    subjects, make_worker, fakes, sessions, settings, clock, outbox_rows
):
    first = make_worker("worker-1")
    connector = first.connectors["meta"]
    push = connector.push
    calls = []

    def dies_on_the_second_push(operation, members):
        calls.append(len(members))
        if len(calls) == 2:
            raise Killed
        return push(operation, members)

    connector.push = dies_on_the_second_push
    with pytest.raises(Killed):
        first.run_pass(["meta"])
    # The first chunk reached the platform; the second is queued, leased to the
    # dead worker; the third was never read.
    assert len(hashes_pushed(fakes.meta)) == 2
    assert outbox_rows(destination="meta", claimed_by="worker-1") == 2
    assert progress_rows(sessions) == 1

    clock.advance(seconds=settings.destinations.sync.lease_seconds + 1)
    (report,) = make_worker("worker-2").run_pass(["meta"])
    assert report.reconciled == 1  # the third chunk, after the resume point
    assert report.suppressed == 3  # the third chunk, then the second from the drain
    assert hashes_pushed(fakes.meta) == Counter({sha(a): 1 for a in ADDRESSES})
    assert outbox_rows(destination="meta") == 0
    assert progress_rows(sessions) == 0


def test_a_reconcile_run_by_a_live_worker_is_not_taken_by_another(sessions, worker, clock):
    now = clock()
    until = now + timedelta(minutes=5)
    with sessions() as session:
        assert take_reconcile(session, "meta", "worker-1", now, until, start=True) == 0
        assert take_reconcile(session, "meta", "worker-2", now, until, start=False) is None
        later = until + timedelta(seconds=1)
        assert take_reconcile(session, "meta", "worker-2", later, later, start=False) == 0
        session.rollback()


def test_a_reconcile_that_meets_an_outage_leaves_the_rest_to_the_drain(
    subjects, make_worker, fakes, sessions, clock, outbox_rows
):
    worker = make_worker()
    fakes.meta.start_outage(status=503)
    (report,) = worker.run_pass(["meta"])
    assert report.reconciled == 5
    assert report.suppressed == 0
    assert outbox_rows(destination="meta", claimed_by=None) == 5  # nothing held by the worker
    assert progress_rows(sessions) == 0
    fakes.meta.end_outage()
    clock.advance(hours=2)
    worker.run_pass(["meta"])
    assert fakes.meta.removed[META_AUDIENCE] == {sha(a) for a in ADDRESSES}
    assert outbox_rows(destination="meta") == 0


def test_a_worker_told_to_stop_leaves_the_rest_of_its_reconcile_to_the_next(
    subjects, make_worker, fakes, sessions, settings, clock
):
    stop = threading.Event()
    first = make_worker("worker-1")
    connector = first.connectors["meta"]
    push = connector.push

    def push_then_stop(operation, members):
        stop.set()  # SIGTERM arrives while the first chunk is pushed
        return push(operation, members)

    connector.push = push_then_stop
    first.run_forever(stop, full_first=False)
    assert len(hashes_pushed(fakes.meta)) == 2
    assert progress_rows(sessions) == 1
    # Destinations after Meta in the pass were not started either.
    assert progress_rows(sessions, "linkedin") == 1
    assert fakes.linkedin.request_count == 0

    clock.advance(seconds=settings.destinations.sync.lease_seconds + 1)
    make_worker("worker-2").run_pass(["meta"])
    assert hashes_pushed(fakes.meta) == Counter({sha(a): 1 for a in ADDRESSES})
    assert progress_rows(sessions) == 0
