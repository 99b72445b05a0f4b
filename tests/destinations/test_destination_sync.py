"""The worker: what reaches which platform, retries, rate limits, parking,
lease recovery and concurrent workers."""

import hashlib
import json
import random
import threading
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pytest

from suppression.connectors.base import Failure, FailureKind
from suppression.connectors.fakes import Fault, call_rate_exceeded, resource_exhausted
from suppression.connectors.settings import SyncSettings, destinations_from_env
from suppression.services.destinations import enqueue, lease, settle
from suppression.services.destinations.planning import backoff_seconds
from suppression.services.destinations.settle import retry_parked
from suppression.store.models.destinations import Destination, OutboxRow


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


META_AUDIENCE = "23850000000000001"


def by_name(reports):
    return {report.destination: report for report in reports}


def test_an_opt_out_of_all_reaches_every_destination_in_one_pass(
    worker, record, fakes, until_processed
):
    record("Jane.Doe@Gmail.com")
    reports = by_name(worker.run_pass())
    assert fakes.keap.opted_out == {"jane.doe@gmail.com": "Suppression service: opted_out"}
    assert fakes.meta.removed[META_AUDIENCE] == {sha("jane.doe@gmail.com")}
    assert fakes.linkedin.removed["880001"] == {sha("jane.doe@gmail.com")}
    assert fakes.microsoft.removed["9000001"] == {sha("jane.doe@gmail.com")}
    assert reports.pop("google").accepted == 1  # Google processes it later
    assert all(report.suppressed == 1 for report in reports.values())
    until_processed(worker)
    assert fakes.google.removed["5550001"] == {sha("janedoe@gmail.com")}  # Data Manager form


def test_an_email_only_opt_out_goes_to_keap_and_not_to_ad_audiences(worker, record, fakes):
    record("jane@example.com", purpose="email_marketing")
    reports = by_name(worker.run_pass())
    assert list(fakes.keap.opted_out) == ["jane@example.com"]
    assert fakes.meta.removed[META_AUDIENCE] == set()
    assert reports["meta"].unchanged == 1
    assert fakes.meta.request_count == 0


def test_an_ad_audience_opt_out_goes_to_ad_platforms_and_not_to_keap(worker, record, fakes):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    assert fakes.keap.opted_out == {}
    assert fakes.meta.removed[META_AUDIENCE] == {sha("jane@example.com")}
    assert fakes.microsoft.removed["9000001"] == {sha("jane@example.com")}


def test_an_eea_address_is_removed_from_audiences_but_not_opted_out_in_keap(worker, record, fakes):
    record("hans@firma.de", status="opted_in", purpose="email_marketing")
    worker.run_pass()
    assert fakes.keap.opted_out == {}
    assert fakes.meta.removed[META_AUDIENCE] == {sha("hans@firma.de")}
    assert fakes.linkedin.removed["880001"] == {sha("hans@firma.de")}


def test_an_objection_opts_out_in_keap_and_a_restriction_does_not(worker, record, fakes):
    record("objects@example.com", block="objection")
    record("restricted@example.com", block="restriction")
    worker.run_pass()
    assert set(fakes.keap.opted_out) == {"objects@example.com"}
    assert fakes.meta.removed[META_AUDIENCE] == {
        sha("objects@example.com"),
        sha("restricted@example.com"),
    }


def test_an_opt_in_pushes_nothing_anywhere(worker, record, fakes, outbox_rows):
    record("fan@example.com", status="opted_in")
    reports = worker.run_pass()
    assert all(fake.request_count == 0 for fake in fakes.all())
    assert all(report.unchanged == 1 for report in reports)
    assert outbox_rows() == 0


def test_an_already_confirmed_suppression_is_not_pushed_again(worker, record, fakes):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    record("jane@example.com", block="complaint")
    reports = by_name(worker.run_pass())
    assert fakes.meta.request_count == 1
    assert reports["meta"].unchanged == 1
    assert reports["keap"].suppressed == 1  # the complaint is news to Keap


def test_suppressed_again_after_being_sendable_is_pushed_again(worker, record, fakes, clock):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    clock.advance(days=1)
    record("jane@example.com", purpose="ad_audiences", status="opted_in")
    worker.run_pass()
    clock.advance(days=1)
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    meta_calls = [r for r in fakes.meta.requests if r.method == "DELETE"]
    assert len(meta_calls) == 2


def test_batches_follow_each_platform_batch_size(
    make_settings, destination_env, make_worker, record, fakes
):
    env = {**destination_env, "META_BATCH_SIZE": "3", "MICROSOFT_BATCH_SIZE": "4"}
    worker = make_worker(settings=replace(make_settings(), destinations=destinations_from_env(env)))
    worker.register()
    for n in range(7):
        record(f"person{n}@example.com", purpose="ad_audiences")
    worker.run_pass()
    assert fakes.meta.batch_sizes == [3, 3, 1]
    assert fakes.microsoft.batch_sizes == [4, 3]
    assert fakes.google.batch_sizes == [7]
    assert len(fakes.meta.removed[META_AUDIENCE]) == 7


def test_a_503_is_retried_after_backoff_and_then_confirmed(
    worker, record, fakes, clock, outbox_rows, sessions
):
    record("jane@example.com", purpose="ad_audiences")
    fakes.meta.fail_next(1, status=503)
    report = by_name(worker.run_pass())["meta"]
    assert report.retrying == 1
    assert fakes.meta.removed[META_AUDIENCE] == set()
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(destination="meta").one()
        assert row.attempts == 1
        assert row.claimed_by is None
        wait = (row.available_at - clock()).total_seconds()
    assert 15 <= wait <= 30  # 30 s base, jitter 0.5..1
    assert by_name(worker.run_pass())["meta"].claimed == 0  # not due yet
    clock.advance(seconds=31)
    assert by_name(worker.run_pass())["meta"].suppressed == 1
    assert fakes.meta.removed[META_AUDIENCE] == {sha("jane@example.com")}
    assert outbox_rows(destination="meta") == 0


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    sync = SyncSettings(backoff_seconds=30, backoff_max_seconds=600)
    rng = random.Random(3)
    delays = [backoff_seconds(n, sync, rng) for n in range(1, 8)]
    ceilings = [30, 60, 120, 240, 480, 600, 600]
    for delay, ceiling in zip(delays, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered


def test_a_429_with_retry_after_pauses_the_destination_and_costs_no_attempt(
    worker, record, fakes, clock, sessions
):
    record("jane@example.com", purpose="ad_audiences")
    fakes.linkedin.fail_next(1, status=429, headers={"Retry-After": "120"})
    report = by_name(worker.run_pass())["linkedin"]
    assert report.paused_until == clock() + timedelta(seconds=120)
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(destination="linkedin").one()
        assert row.attempts == 0
        assert row.available_at == clock() + timedelta(seconds=120)
        assert session.get(Destination, "linkedin").paused_until == report.paused_until
    clock.advance(seconds=119)
    assert by_name(worker.run_pass())["linkedin"].claimed == 0
    clock.advance(seconds=2)
    assert by_name(worker.run_pass())["linkedin"].suppressed == 1


def test_platform_specific_rate_limits_are_honoured(worker, record, fakes, clock, sessions):
    record("jane@example.com", purpose="ad_audiences")
    fakes.meta.throttle_next(regain_minutes=5)
    fakes.google.fail_next(1, resource_exhausted(45))
    fakes.microsoft.fail_next(1, call_rate_exceeded())
    reports = by_name(worker.run_pass())
    assert reports["meta"].paused_until == clock() + timedelta(minutes=5)
    assert reports["google"].paused_until == clock() + timedelta(seconds=45)
    assert reports["microsoft"].paused_until == clock() + timedelta(seconds=60)
    clock.advance(minutes=6)
    reports = by_name(worker.run_pass())
    assert all(reports[n].suppressed == 1 for n in ("meta", "microsoft"))
    assert reports["google"].accepted == 1


def test_rows_are_parked_after_max_attempts_and_an_operator_retry_requeues_them(
    make_settings, destination_env, make_worker, record, fakes, clock, sessions, outbox_rows
):
    env = {**destination_env, "SYNC_MAX_ATTEMPTS": "3"}
    worker = make_worker(settings=replace(make_settings(), destinations=destinations_from_env(env)))
    worker.register()
    record("jane@example.com", purpose="email_marketing")
    fakes.keap.start_outage(status=502)
    parked = 0
    for _ in range(3):
        parked += by_name(worker.run_pass(["keap"]))["keap"].parked
        clock.advance(hours=2)
    assert parked == 1
    assert outbox_rows(destination="keap", failed_at=None) == 0
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(destination="keap").one()
        assert row.attempts == 3
        assert "HTTP 502" in row.last_error
    assert by_name(worker.run_pass(["keap"]))["keap"].claimed == 0  # parked stays parked
    fakes.keap.end_outage()
    with sessions() as session:
        assert retry_parked(session, "keap") == 1
        session.commit()
    assert by_name(worker.run_pass(["keap"]))["keap"].suppressed == 1
    assert fakes.keap.opted_out == {"jane@example.com": "Suppression service: opted_out"}


def test_permanent_errors_park_after_fewer_attempts(worker, record, fakes, clock, outbox_rows):
    record("jane@example.com", purpose="ad_audiences")
    fakes.meta.start_outage(
        status=400, body={"error": {"code": 100, "message": "Invalid parameter", "type": "X"}}
    )
    for _ in range(3):
        worker.run_pass(["meta"])
        clock.advance(hours=2)
    assert outbox_rows(destination="meta", failed_at=None) == 0
    assert outbox_rows(destination="meta") == 1


def test_an_outage_delays_but_never_loses_a_suppression(worker, record, fakes, clock):
    for fake in fakes.all():
        fake.start_outage(status=503)
    record("jane@example.com")
    for _ in range(4):
        worker.run_pass()
        clock.advance(minutes=10)
    assert fakes.keap.opted_out == {}
    for fake in fakes.all():
        fake.end_outage()
    clock.advance(hours=1)
    reports = by_name(worker.run_pass())
    assert reports.pop("google").accepted == 1
    assert all(report.suppressed == 1 for report in reports.values())
    assert fakes.keap.opted_out == {"jane@example.com": "Suppression service: opted_out"}
    assert fakes.microsoft.removed["9000001"] == {sha("jane@example.com")}


def test_a_timeout_is_retried_later(
    make_settings, destination_env, make_worker, record, fakes, clock, outbox_rows
):
    env = {**destination_env, "SYNC_HTTP_TIMEOUT_SECONDS": "0.2"}
    worker = make_worker(settings=replace(make_settings(), destinations=destinations_from_env(env)))
    worker.register()
    record("jane@example.com", purpose="ad_audiences")
    fakes.meta.fail_next(1, Fault(200, {"num_received": 1}, delay=1.0))
    report = by_name(worker.run_pass(["meta"]))["meta"]
    assert report.retrying == 1
    assert "no answer within" in report.error
    clock.advance(minutes=5)
    assert by_name(worker.run_pass(["meta"]))["meta"].suppressed == 1
    assert outbox_rows(destination="meta") == 0


def test_per_item_failures_settle_each_member_on_its_own(worker, record, fakes, sessions):
    record("good@example.com", purpose="ad_audiences")
    bad = record("bad@example.com", purpose="ad_audiences")
    fakes.microsoft.reject_hashes.add(sha("bad@example.com"))
    fakes.linkedin.reject_hashes.add(sha("bad@example.com"))
    reports = by_name(worker.run_pass(["microsoft", "linkedin"]))
    for name in ("microsoft", "linkedin"):
        assert reports[name].suppressed == 1
        assert reports[name].retrying == 1
    with sessions() as session:
        rows = session.query(OutboxRow).filter(OutboxRow.destination.in_(reports)).all()
    assert {(row.destination, row.subject_id) for row in rows} == {
        ("microsoft", bad),
        ("linkedin", bad),
    }


def test_stored_errors_never_contain_the_address(worker, record, fakes, sessions):
    record("jane@example.com", purpose="email_marketing")
    fakes.keap.fail_next(
        1,
        status=400,
        body={"code": 400, "message": "Invalid email jane@example.com (jane%40example.com)"},
    )
    report = by_name(worker.run_pass(["keap"]))["keap"]
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(destination="keap").one()
        destination = session.get(Destination, "keap")
    for text in (report.error, row.last_error, destination.last_error):
        assert "jane" not in text
        assert "[address]" in text


def test_a_killed_worker_loses_nothing_its_rows_return_after_the_lease(
    worker, make_worker, record, fakes, clock, sessions
):
    for n in range(3):
        record(f"person{n}@example.com", purpose="ad_audiences")
    with sessions() as session:  # a worker claims, then dies before pushing
        claimed = lease.claim(session, "meta", "dead-worker", clock(), 300, 100)
        session.commit()
    assert len(claimed) == 3
    survivor = make_worker("worker-2")
    assert by_name(survivor.run_pass(["meta"]))["meta"].claimed == 0  # still leased
    clock.advance(seconds=301)
    assert by_name(survivor.run_pass(["meta"]))["meta"].suppressed == 3
    assert fakes.meta.batch_sizes == [3]
    assert len(fakes.meta.removed[META_AUDIENCE]) == 3


@pytest.mark.committed  # a worker on an engine of its own
def test_on_postgresql_a_killed_worker_s_rows_return_as_soon_as_its_connections_are_gone(
    make_worker, record, fakes, clock, sessions, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the liveness lock is a PostgreSQL advisory lock; SQLite waits for the lease")
    from sqlalchemy.orm import sessionmaker

    from suppression.store import engines as database

    make_worker().register()
    for n in range(3):
        record(f"person{n}@example.com", purpose="ad_audiences")
    engine = database.make_engine(database_url)  # the doomed worker's own connections
    try:
        with sessionmaker(engine)() as session:
            claimed = lease.claim(session, "meta", "killed-worker", clock(), 300, 100)
            session.commit()
        assert len(claimed) == 3
        watcher = make_worker("worker-2")
        assert by_name(watcher.run_pass(["meta"]))["meta"].claimed == 0  # alive: leased
    finally:
        engine.dispose()  # the process dies: the server drops its connections
    survivor = make_worker("worker-3")
    assert by_name(survivor.run_pass(["meta"]))["meta"].suppressed == 3  # no lease wait
    assert len(fakes.meta.removed[META_AUDIENCE]) == 3


def test_on_postgresql_a_pooled_connection_holds_one_worker_s_liveness_lock_at_a_time(
    sessions, clock, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("the liveness lock is a PostgreSQL advisory lock")
    from sqlalchemy import text

    def held(session, worker):
        key = lease.liveness_key(worker)
        return bool(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND pid = pg_backend_pid() AND objsubid = 1"
                    " AND (classid::bigint << 32) | objid::bigint = :key"
                ),
                {"key": key},
            )
        )

    with sessions() as session:  # one connection, as a "sync now" request after another
        lease.claim(session, "meta", "request-1", clock(), 300, 10)
        assert held(session, "request-1")
        lease.claim(session, "meta", "request-2", clock(), 300, 10)
        assert held(session, "request-2")
        assert not held(session, "request-1")  # moved, not piled up
        session.commit()


def test_the_dead_worker_cannot_overwrite_rows_another_worker_took_over(
    worker, record, clock, sessions, fakes
):
    subject = record("jane@example.com", purpose="ad_audiences")
    with sessions() as session:
        rows = lease.claim(session, "meta", "slow-worker", clock(), 300, 10)
        session.commit()
    clock.advance(seconds=301)
    worker.run_pass(["meta"])  # takes over and confirms
    with sessions() as session:  # the slow worker comes back with a failure
        settle.settle_failed(
            session,
            "meta",
            "slow-worker",
            clock(),
            rows,
            Failure(FailureKind.TRANSIENT, "late"),
            SyncSettings(),
            random.Random(1),
        )
        session.commit()
        assert (
            session.query(OutboxRow).filter_by(subject_id=subject, destination="meta").count() == 0
        )


@pytest.mark.committed  # the workers run in threads
@pytest.mark.parametrize("workers", [2])
def test_two_workers_at_once_never_push_a_row_twice(
    make_settings, destination_env, make_worker, record, fakes, clock, workers
):
    env = {**destination_env, "META_BATCH_SIZE": "7"}
    settings = replace(make_settings(), destinations=destinations_from_env(env))
    make_worker(settings=settings).register()
    emails = [f"person{n}@example.com" for n in range(60)]
    for email in emails:
        record(email, purpose="ad_audiences")
    fakes.meta.latency = 0.01
    team = [make_worker(f"worker-{n}", seed=n, settings=settings) for n in range(workers)]
    start = threading.Barrier(workers)
    errors = []

    def run(member):
        try:
            start.wait()
            member.run_pass(["meta"])
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(member,)) for member in team]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    sent = Counter(
        value
        for request in fakes.meta.requests
        if request.method == "DELETE"
        for value in json.loads(request.body["payload"])["data"]
    )
    assert set(sent) == {sha(e) for e in emails}
    assert max(sent.values()) == 1


def test_an_erased_address_that_was_dropped_is_recorded_as_not_pushable(
    worker, record, sessions, clock, fakes
):
    from suppression.services.destinations.queue_status import pushes_for
    from suppression.store.models import Subject

    subject_id = record("gone@example.com", status="opted_in")
    worker.run_pass()
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        subject.erased_at = clock()
        subject.email_sealed = None
        enqueue.enqueue_subject_change(session, subject_id, clock())
        session.commit()
    reports = worker.run_pass()
    assert all(report.no_address == 1 for report in reports)
    assert all(fake.request_count == 0 for fake in fakes.all())
    with sessions() as session:
        assert {p.outcome for p in pushes_for(session, subject_id)} == {"no_address"}


def test_an_exclusion_audience_gets_suppressed_people_and_loses_them_when_sendable(
    make_settings, destination_env, make_worker, record, fakes, clock
):
    fakes.meta.add_audience("777")
    env = {**destination_env, "META_EXCLUSION_AUDIENCE_ID": "777"}
    worker = make_worker(settings=replace(make_settings(), destinations=destinations_from_env(env)))
    worker.register()
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass(["meta"])
    assert fakes.meta.audiences["777"] == {sha("jane@example.com")}
    clock.advance(days=1)
    record("jane@example.com", purpose="ad_audiences", status="opted_in")
    report = by_name(worker.run_pass(["meta"]))["meta"]
    assert report.restored == 1
    assert fakes.meta.audiences["777"] == set()


def test_on_postgresql_a_claim_in_progress_is_skipped_not_waited_for(
    worker, record, clock, sessions, database_url
):
    if not database_url.startswith("postgresql"):
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite runs one writer at a time")
    for n in range(4):
        record(f"person{n}@example.com", purpose="ad_audiences")
    first = sessions()
    try:
        mine = lease.claim(first, "meta", "worker-a", clock(), 300, 2)  # not committed yet
        with sessions() as second:
            theirs = lease.claim(second, "meta", "worker-b", clock(), 300, 10)
            second.commit()
        first.commit()
    finally:
        first.close()
    assert len(mine) == 2
    assert len(theirs) == 2
    assert not {r.id for r in mine} & {r.id for r in theirs}


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_one_click_unsubscribe_reaches_every_destination_within_one_pass(
    client, make_key, worker, fakes, sessions, until_processed
):
    sender = make_key("sender", "platform")
    minted = client.post(
        "/v1/unsubscribe-links",
        json={"email": "Jane.Doe@Example.com", "purpose": "all"},
        headers=sender,
    )
    assert minted.status_code == 200, minted.get_json()
    path = "/" + minted.get_json()["url"].split("/", 3)[3]
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    reports = by_name(worker.run_pass())
    assert reports.pop("google").accepted == 1  # sent in this pass, processed by Google later
    assert all(report.suppressed == 1 for report in reports.values())
    assert fakes.keap.opted_out == {"jane.doe@example.com": "Suppression service: opted_out"}
    until_processed(worker)
    for removed in (fakes.meta.removed, fakes.google.removed, fakes.linkedin.removed):
        assert list(removed.values()) == [{sha("jane.doe@example.com")}]
    assert fakes.microsoft.removed["9000001"] == {sha("jane.doe@example.com")}
