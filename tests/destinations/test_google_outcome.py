"""Google processes a removal after answering it: the worker keeps the request
id, reads the request's status until it is final, and only then confirms,
retries or parks the rows (Data Manager requestStatus:retrieve; the Ads API
job status)."""

import hashlib
from dataclasses import replace
from datetime import timedelta

from suppression.connectors.fakes.google import Outcome, resource_exhausted
from suppression.connectors.settings import destinations_from_env
from suppression.services.destinations.queue_status import pushes_for
from suppression.store.models.destinations import DestinationSubject, OutboxRow


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def google_report(reports):
    (report,) = [r for r in reports if r.destination == "google"]
    return report


def google_row(sessions) -> OutboxRow:
    with sessions() as session:
        row = session.query(OutboxRow).filter_by(destination="google").one()
        session.expunge(row)
        return row


def status_reads(fakes) -> int:
    return sum(1 for r in fakes.google.requests if r.path == "/v1/requestStatus:retrieve")


def google_worker(make_settings, make_worker, destination_env, name="worker-1", **env):
    settings = replace(
        make_settings(), destinations=destinations_from_env({**destination_env, **env})
    )
    worker = make_worker(name, settings=settings)
    worker.register()
    return worker


def test_google_rows_are_not_confirmed_on_acceptance(worker, record, fakes, sessions):
    subject_id = record("jane@example.com", purpose="ad_audiences")
    report = google_report(worker.run_pass())
    assert (report.accepted, report.suppressed) == (1, 0)
    (request_id,) = fakes.google.accepted
    row = google_row(sessions)
    assert row.request_id == f"datamanager:{request_id}"
    assert (row.request_operation, row.request_reason) == ("suppress", "opted_out")
    with sessions() as session:
        assert session.get(DestinationSubject, ("google", subject_id)) is None
        assert [p.destination for p in pushes_for(session, subject_id)].count("google") == 0
    assert fakes.google.removed["5550001"] == set()  # Google has not processed it yet


def test_google_rows_are_confirmed_when_the_request_status_turns_success(
    worker, record, fakes, sessions, clock, settings, outbox_rows
):
    subject_id = record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    assert google_report(worker.run_pass()).processing == 0  # not due for a read yet
    assert status_reads(fakes) == 0
    clock.advance(seconds=settings.destinations.sync.status_seconds)
    report = google_report(worker.run_pass())
    assert (report.processing, report.suppressed) == (1, 0)  # PROCESSING: still waiting
    assert outbox_rows(destination="google") == 1
    clock.advance(seconds=settings.destinations.sync.status_seconds)
    report = google_report(worker.run_pass())
    assert (report.processing, report.suppressed) == (0, 1)
    assert status_reads(fakes) == 2
    assert outbox_rows(destination="google") == 0
    assert fakes.google.removed["5550001"] == {sha("jane@example.com")}
    with sessions() as session:
        held = session.get(DestinationSubject, ("google", subject_id))
        assert (held.suppressed, held.reason) == (True, "opted_out")
        (push,) = [p for p in pushes_for(session, subject_id) if p.destination == "google"]
        assert (push.operation, push.outcome, push.pushed_at) == ("suppress", "confirmed", clock())


def test_a_failed_status_with_an_internal_error_is_retried_and_pushed_again(
    worker, record, fakes, sessions, clock, until_processed, outbox_rows
):
    fakes.google.finish_next_as(Outcome("FAILED", ("PROCESSING_ERROR_REASON_INTERNAL_ERROR",)))
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    reports = until_processed(worker)
    assert google_report(reports[-1]).retrying == 1
    row = google_row(sessions)
    assert row.request_id is None
    assert row.failed_at is None
    assert row.attempts == 1
    assert "FAILED" in row.last_error
    assert "INTERNAL_ERROR" in row.last_error
    clock.advance(minutes=5)
    assert google_report(worker.run_pass()).accepted == 1
    until_processed(worker)
    assert fakes.google.batch_sizes == [1, 1]
    assert outbox_rows(destination="google") == 0
    assert fakes.google.removed["5550001"] == {sha("jane@example.com")}


def test_a_failed_status_with_a_data_error_parks_the_rows_after_the_permanent_attempts(
    make_settings, make_worker, destination_env, record, fakes, sessions, until_processed
):
    worker = google_worker(make_settings, make_worker, destination_env, SYNC_PERMANENT_ATTEMPTS="1")
    fakes.google.finish_next_as(
        Outcome("PARTIAL_SUCCESS", ("PROCESSING_ERROR_REASON_INVALID_FORMAT",))
    )
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    reports = until_processed(worker)
    assert google_report(reports[-1]).parked == 1
    row = google_row(sessions)
    assert row.failed_at is not None
    assert row.request_id is None
    assert "PARTIAL_SUCCESS" in row.last_error
    assert "INVALID_FORMAT" in row.last_error


def test_a_worker_restart_between_acceptance_and_status_keeps_the_rows_and_reads_again(
    make_worker, record, fakes, sessions, clock, settings, outbox_rows
):
    first = make_worker("worker-1")
    first.register()
    record("jane@example.com", purpose="ad_audiences")
    first.run_pass()
    (request_id,) = fakes.google.accepted
    first.close()  # the worker stops; what it was told lives in the database only
    restarted = make_worker("worker-2")
    for _ in range(2):
        clock.advance(seconds=settings.destinations.sync.status_seconds)
        assert outbox_rows(destination="google") == 1
        report = google_report(restarted.run_pass())
    assert report.suppressed == 1
    assert fakes.google.accepted[request_id].reads == 2  # the same request, read again
    assert fakes.google.batch_sizes == [1]  # not pushed a second time
    assert outbox_rows(destination="google") == 0


def test_a_change_while_a_request_is_processing_waits_for_its_outcome(
    worker, record, fakes, sessions, until_processed, outbox_rows
):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    record("jane@example.com", block="complaint")
    assert outbox_rows(destination="google") == 2  # the change is queued, not lost
    assert google_report(worker.run_pass()).claimed == 0  # the subject is in flight
    reports = until_processed(worker)
    assert sum(google_report(r).unchanged for r in reports) == 1  # already confirmed
    assert fakes.google.batch_sizes == [1]
    assert outbox_rows(destination="google") == 0


def test_the_data_manager_destination_names_its_account_type(worker, record, fakes):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    (call,) = [r for r in fakes.google.requests if r.path == "/v1/audienceMembers:remove"]
    (destination,) = call.body["destinations"]
    # ProductAccount.product is deprecated for account_type (destination.proto).
    assert destination["operatingAccount"] == {
        "accountType": "GOOGLE_ADS",
        "accountId": fakes.google.operating_account_id,
    }


def test_the_ads_api_makes_one_job_per_user_list_per_pass(
    make_settings, make_worker, destination_env, record, fakes, until_processed, outbox_rows
):
    fakes.google.user_lists.add("5550002")
    fakes.google.removed["5550002"] = set()
    worker = google_worker(
        make_settings,
        make_worker,
        destination_env,
        GOOGLE_API="ads_api",
        GOOGLE_BATCH_SIZE="2",
        GOOGLE_USER_LIST_IDS="5550001,5550002",
    )
    people = [f"person{n}@example.com" for n in range(5)]
    for email in people:
        record(email, purpose="ad_audiences")
    report = google_report(worker.run_pass(["google"]))
    assert (report.accepted, report.suppressed) == (5, 0)
    paths = [r.path.rsplit(":", 1)[-1] for r in fakes.google.requests]
    assert paths.count("create") == 2  # one job per user list, not per batch
    assert paths.count("addOperations") == 6  # three batches into each job
    assert paths[-2:] == ["run", "run"]  # run once, at the end of the pass
    assert {job["list"] for job in fakes.google.jobs.values()} == {"5550001", "5550002"}
    until_processed(worker)
    expected = {sha(email) for email in people}
    assert fakes.google.removed == {"5550001": expected, "5550002": expected}
    assert outbox_rows(destination="google") == 0


def test_an_ads_api_job_left_unrun_by_a_stopped_worker_is_run_by_the_next_status_read(
    make_settings, make_worker, destination_env, record, fakes, until_processed, outbox_rows
):
    worker = google_worker(make_settings, make_worker, destination_env, GOOGLE_API="ads_api")
    connector = worker.connectors["google"]
    connector.end_pass = lambda: None  # the worker stops before the end of its pass
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass(["google"])
    assert fakes.google.jobs["1"]["status"] == "PENDING"
    restarted = google_worker(
        make_settings, make_worker, destination_env, "worker-2", GOOGLE_API="ads_api"
    )
    until_processed(restarted)
    assert [r.path for r in fakes.google.requests].count(
        "/v26/customers/1234567890/offlineUserDataJobs/1:run"
    ) == 1
    assert fakes.google.removed["5550001"] == {sha("jane@example.com")}
    assert outbox_rows(destination="google") == 0


def test_a_failed_ads_api_job_is_retried(
    make_settings, make_worker, destination_env, record, fakes, sessions, until_processed
):
    worker = google_worker(make_settings, make_worker, destination_env, GOOGLE_API="ads_api")
    fakes.google.finish_next_as(Outcome("FAILED"))
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass(["google"])
    reports = until_processed(worker)
    assert google_report(reports[-1]).retrying == 1
    row = google_row(sessions)
    assert (row.attempts, row.request_id) == (1, None)
    assert "the job failed" in row.last_error


def test_a_full_reconcile_while_a_request_is_processing_adds_no_second_row(
    worker, record, fakes, outbox_rows
):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    report = google_report(worker.run_pass(["google"], full=True))
    assert report.reconciled == 0  # the accepted row confirms or retries by itself
    assert outbox_rows(destination="google") == 1
    assert fakes.google.batch_sizes == [1]


def test_a_rate_limited_status_read_keeps_the_rows_waiting_and_pauses_google(
    worker, record, fakes, sessions, clock, settings
):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    clock.advance(seconds=settings.destinations.sync.status_seconds)
    fakes.google.fail_next(1, resource_exhausted(60))
    report = google_report(worker.run_pass())
    assert report.paused_until == clock() + timedelta(seconds=60)
    row = google_row(sessions)
    assert row.request_id is not None  # still the same request, read again later
    assert row.attempts == 0
    assert row.available_at == clock() + timedelta(seconds=60)


def test_a_request_google_does_not_know_is_pushed_again(
    worker, record, fakes, sessions, clock, settings
):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    fakes.google.accepted.clear()  # its status read answers INVALID_REQUEST_ID
    clock.advance(seconds=settings.destinations.sync.status_seconds)
    assert google_report(worker.run_pass()).retrying == 1
    row = google_row(sessions)
    assert row.request_id is None
    assert row.attempts == 1
    assert "INVALID_ARGUMENT" in row.last_error
