"""Keap: only what Keap really did is confirmed. A 404 is "not held" only when
Keap's own error body says so and a status read agrees; a wrong base URL or
route parks the rows with an alarm; `opted_in` is checked; XML-RPC `false` is
verified with getOptStatus and faults are classified; requests are paced by
Keap's quotas and stop for the day when the daily quota is spent."""

import time
import xmlrpc.client
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
import requests

from suppression.connectors.base import FailureKind, Member, Operation
from suppression.connectors.fakes.keap import keap_error, xmlrpc_fault
from suppression.connectors.keap_quota import read_quota_headers
from suppression.connectors.settings import build_connector, destinations_from_env
from suppression.services.destinations.registry import destination_statuses
from suppression.store.models.destinations import DestinationPush, DestinationSubject, OutboxRow

JANE = Member(1, "jane@example.com", "opted_out")
BOB = Member(2, "bob@example.com", "opted_out")


@pytest.fixture
def connect(fakes):
    made = []

    def build(**env: str):
        settings = destinations_from_env({**fakes.environment(), **env})
        connector = build_connector(settings, "keap")
        made.append(connector)
        return connector

    yield build
    for connector in made:
        connector.close()


@pytest.fixture
def keap_worker(make_settings, destination_env, make_worker):
    """A registered worker whose Keap settings are changed by `env`."""

    def build(**env: str):
        destinations = destinations_from_env({**destination_env, **env})
        worker = make_worker(settings=replace(make_settings(), destinations=destinations))
        worker.register()
        return worker

    return build


def keap_report(worker):
    (report,) = worker.run_pass(["keap"])
    return report


def keap_rows(sessions) -> list[OutboxRow]:
    with sessions() as session:
        return session.query(OutboxRow).filter_by(destination="keap").all()


# A misconfigured Keap (item 1) -------------------------------------------------


@pytest.mark.parametrize("method", ["rest", "xmlrpc"])
def test_a_misconfigured_keap_base_url_parks_rows_with_an_alarm_and_never_confirms(
    method, keap_worker, record, fakes, sessions, clock
):
    # The fake's routes under another prefix answer 404 with a web server's page.
    worker = keap_worker(
        KEAP_BASE_URL=f"{fakes.keap.url}/not-keap",
        KEAP_METHOD=method,
        KEAP_CONCURRENCY="1",
    )
    for name in ("jane", "bob", "ann"):
        record(f"{name}@example.com", purpose="email_marketing")
    report = keap_report(worker)
    assert (report.suppressed, report.not_found) == (0, 0)
    assert report.parked == 3
    assert fakes.keap.request_count == 1  # the first answer stops the batch
    rows = keap_rows(sessions)
    assert len(rows) == 3
    assert all(row.failed_at is not None for row in rows)
    assert all("KEAP_BASE_URL" in row.last_error for row in rows)
    with sessions() as session:
        assert session.query(DestinationSubject).filter_by(destination="keap").count() == 0
        assert session.query(DestinationPush).filter_by(destination="keap").count() == 0
        (status,) = [
            s
            for s in destination_statuses(session, worker.destinations, clock())
            if s.name == "keap"
        ]
    assert status.failed == 3  # `sync status` exits 1 on parked rows: the alarm
    assert status.last_success_at is None
    assert "KEAP_BASE_URL" in status.last_error
    clock.advance(hours=6)
    assert keap_report(worker).claimed == 0  # parked until the operator retries


@pytest.mark.parametrize(
    "body",
    [
        "<html><body>Not Found</body></html>",
        "",
        {"error": "not found"},
        {"message": "Not Found"},
    ],
)
def test_a_404_without_keaps_error_body_is_a_configuration_failure(body, connect, fakes):
    fakes.keap.fail_next(1, status=404, body=body)
    result = connect().push(Operation.SUPPRESS, [JANE])
    assert result.not_found == set()
    assert result.failures[1].kind == FailureKind.CONFIGURATION
    assert fakes.keap.opted_out == {}


def test_a_200_that_is_not_an_email_status_is_a_configuration_failure(connect, fakes):
    fakes.keap.fail_next(1, status=200, body="<html><body>Sign in</body></html>")
    result = connect().push(Operation.SUPPRESS, [JANE])
    assert result.confirmed == set()
    assert result.failures[1].kind == FailureKind.CONFIGURATION


def test_keaps_404_is_confirmed_as_not_held_by_reading_the_status(connect, fakes):
    fakes.keap.known_only = True
    result = connect(KEAP_CONCURRENCY="1").push(Operation.SUPPRESS, [JANE])
    assert result.not_found == {1}
    assert [(r.method, r.path) for r in fakes.keap.requests] == [
        ("PATCH", "/crm/rest/v2/emailAddresses/jane@example.com/status"),
        ("GET", "/crm/rest/v2/emailAddresses/jane@example.com/status"),
    ]


def test_keaps_404_that_the_status_read_contradicts_is_not_taken_for_not_held(
    keap_worker, record, fakes, sessions
):
    worker = keap_worker()
    record("jane@example.com", purpose="email_marketing")
    fakes.keap.fail_next(1, status=404, body=keap_error(404, "Not found", "emailAddress"))
    report = keap_report(worker)  # the GET finds the address, still opted in
    assert (report.not_found, report.suppressed, report.retrying) == (0, 0, 1)
    (row,) = keap_rows(sessions)
    assert "still opted in" in row.last_error


def test_opted_in_true_after_the_opt_out_is_not_a_confirmation(
    keap_worker, record, fakes, sessions
):
    worker = keap_worker()
    record("jane@example.com", purpose="email_marketing")
    fakes.keap.ignores_opt_out.add("jane@example.com")
    report = keap_report(worker)
    assert (report.suppressed, report.not_found, report.retrying) == (0, 0, 1)
    with sessions() as session:
        assert session.query(DestinationSubject).filter_by(destination="keap").count() == 0


def test_a_status_without_opted_in_is_read_from_its_status(connect, fakes):
    body = {"email": "jane@example.com", "status": "SINGLE_OPT_IN", "create_time": "2026-01-01"}
    fakes.keap.fail_next(1, status=200, body=body)
    result = connect().push(Operation.SUPPRESS, [JANE])
    assert result.failures[1].kind == FailureKind.PERMANENT
    body = {**body, "status": "LIST_UNSUBSCRIBE"}
    fakes.keap.fail_next(1, status=200, body=body)
    assert connect().push(Operation.SUPPRESS, [JANE]).confirmed == {1}


# Quotas (item 2) ----------------------------------------------------------------


def test_keap_is_paced_by_the_quota_of_its_credential_kind(fakes):
    key = destinations_from_env({"KEAP_API_KEY": "KeapAK-1"})
    oauth = destinations_from_env({"KEAP_ACCESS_TOKEN": "token"})
    assert key.keap.max_requests_per_second is None
    by_key, by_oauth = build_connector(key, "keap"), build_connector(oauth, "keap")
    try:
        assert by_key.limiter.interval == pytest.approx(60 / 240)  # 240 a minute
        assert by_oauth.limiter.interval == pytest.approx(60 / 1500)  # 1,500 a minute
    finally:
        by_key.close()
        by_oauth.close()
    explicit = destinations_from_env({"KEAP_API_KEY": "k", "KEAP_MAX_RPS": "2"})
    assert explicit.keap.max_requests_per_second == 2


def test_a_spent_daily_quota_stops_keap_until_it_resets(
    keap_worker, record, fakes, sessions, clock
):
    worker = keap_worker(KEAP_CONCURRENCY="1")
    fakes.keap.quota_per_day = 2
    for name in ("jane", "bob", "ann"):
        record(f"{name}@example.com", purpose="email_marketing")
    report = keap_report(worker)
    assert (report.suppressed, report.retrying, report.parked) == (2, 1, 0)
    assert fakes.keap.request_count == 2  # the headers said the day's quota was spent
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    waits = (midnight + timedelta(days=1)).timestamp() - time.time()
    assert report.paused_until == pytest.approx(
        clock() + timedelta(seconds=waits), abs=timedelta(seconds=30)
    )
    with sessions() as session:
        (status,) = [
            s
            for s in destination_statuses(session, worker.destinations, clock())
            if s.name == "keap"
        ]
    assert status.paused_until == report.paused_until
    assert "daily request quota of 2 is spent; sending resumes at" in status.last_error
    assert (midnight + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ") in status.last_error
    # half-way to the reset, however close to midnight the test runs
    clock.advance(seconds=(report.paused_until - clock()).total_seconds() / 2)
    assert keap_report(worker).claimed == 0  # still paused


def test_a_spent_minute_throttle_pauses_keap_for_the_window(keap_worker, record, fakes, clock):
    worker = keap_worker(KEAP_CONCURRENCY="1")
    fakes.keap.throttle_per_minute = 1
    record("jane@example.com", purpose="email_marketing")
    record("bob@example.com", purpose="email_marketing")
    report = keap_report(worker)
    assert (report.suppressed, report.retrying) == (1, 1)
    assert report.paused_until == clock() + timedelta(seconds=60)
    assert fakes.keap.request_count == 1


def test_a_429_with_the_daily_quota_spent_waits_for_the_reset(connect, fakes):
    expiry = int((time.time() + 7200) * 1000)
    headers = {
        "x-keap-product-quota-limit": "30000",
        "x-keap-product-quota-available": "0",
        "x-keap-product-quota-expiry-time": str(expiry),
    }
    fakes.keap.fail_next(1, status=429, body={"fault": {}}, headers=headers)
    result = connect(KEAP_CONCURRENCY="1").push(Operation.SUPPRESS, [JANE, BOB])
    assert {f.kind for f in result.failures.values()} == {FailureKind.RATE_LIMITED}
    assert result.failures[1].retry_after == pytest.approx(7200, abs=30)
    assert "daily request quota of 30000 is spent" in result.failures[2].message
    assert fakes.keap.request_count == 1


def test_quota_headers_are_read_defensively():
    now = 1_800_000_000.0
    seconds = read_quota_headers({"X-Keap-Product-Quota-Expiry-Time": str(int(now) + 60)})
    millis = read_quota_headers({"x-keap-product-quota-expiry-time": str(int(now + 60) * 1000)})
    assert seconds.quota_expires_at == millis.quota_expires_at == now + 60
    junk = read_quota_headers(
        {"x-keap-product-quota-available": "lots", "x-keap-product-throttle-time-unit": "fortnight"}
    )
    assert junk.quota_available is None
    assert junk.throttle_window_seconds is None
    assert junk.exhausted(now) is None
    late = read_quota_headers({"x-keap-product-quota-available": "0"}).exhausted(now)
    assert late is not None
    tomorrow = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0) + timedelta(
        days=1
    )
    assert late.retry_after == pytest.approx(tomorrow.timestamp() - now)


# XML-RPC (item 3) ---------------------------------------------------------------


def test_xmlrpc_false_from_an_already_non_marketable_address_is_confirmed_by_get_opt_status(
    keap_worker, record, fakes
):
    worker = keap_worker(KEAP_METHOD="xmlrpc", KEAP_CONCURRENCY="1")
    fakes.keap.known_only = True  # optOut answers false; getOptStatus 0
    record("jane@example.com", purpose="email_marketing")
    report = keap_report(worker)
    assert (report.suppressed, report.not_found) == (1, 0)
    methods = [xmlrpc.client.loads(r.body.encode())[1] for r in fakes.keap.requests]
    assert methods == ["APIEmailService.optOut", "APIEmailService.getOptStatus"]


def test_xmlrpc_false_from_a_still_marketable_address_is_not_confirmed(
    keap_worker, record, fakes, sessions
):
    worker = keap_worker(KEAP_METHOD="xmlrpc")
    fakes.keap.ignores_opt_out.add("jane@example.com")  # getOptStatus 1
    record("jane@example.com", purpose="email_marketing")
    report = keap_report(worker)
    assert (report.suppressed, report.not_found, report.retrying) == (0, 0, 1)
    (row,) = keap_rows(sessions)
    assert "getOptStatus 1" in row.last_error


def test_xmlrpc_faults_are_classified(connect, fakes):
    faults = {
        (2, "[InvalidKey]Invalid Key"): FailureKind.AUTH,
        (0, "Rate limit quota violation"): FailureKind.RATE_LIMITED,
        (4, "[DatabaseError]Error with database"): FailureKind.TRANSIENT,
        (0, "No such handler: APIEmailService.optOut"): FailureKind.CONFIGURATION,
        (12, "[InvalidParameter]Bad email"): FailureKind.PERMANENT,
    }
    kinds = {}
    for (code, text), _kind in faults.items():
        fakes.keap.fail_next(1, xmlrpc_fault(code, text))
        result = connect(KEAP_METHOD="xmlrpc").push(Operation.SUPPRESS, [JANE])
        kinds[(code, text)] = result.failures[1].kind
    assert kinds == faults


def test_an_xmlrpc_auth_fault_is_retried_not_parked_early(
    keap_worker, record, fakes, sessions, clock
):
    worker = keap_worker(KEAP_METHOD="xmlrpc")
    record("jane@example.com", purpose="email_marketing")
    fakes.keap.start_outage(xmlrpc_fault(2, "[InvalidKey]Invalid Key"))
    for _ in range(3):
        keap_report(worker)
        clock.advance(hours=2)
    (row,) = keap_rows(sessions)
    assert row.failed_at is None  # an auth failure waits for the operator, a permanent one parks
    assert "InvalidKey" in row.last_error


# The fake speaks Keap (item 8) ----------------------------------------------------


def test_the_fake_answers_like_keap(fakes):
    base = fakes.keap.base_url
    key = {"X-Keap-API-Key": fakes.keap.api_key}
    unknown_route = requests.get(f"{base}/rest/v9/nothing", headers=key, timeout=5)
    assert unknown_route.status_code == 404
    assert not unknown_route.headers["Content-Type"].startswith("application/json")
    fakes.keap.known_only = True
    fakes.keap.quota_per_day = 10
    missing = requests.get(
        f"{base}/rest/v2/emailAddresses/a%40b.com/status", headers=key, timeout=5
    )
    assert missing.status_code == 404
    assert set(missing.json()) == {"code", "message", "status", "details"}
    fakes.keap.contacts.add("a@b.com")
    held = requests.get(f"{base}/rest/v2/emailAddresses/a%40b.com/status", headers=key, timeout=5)
    assert held.json()["opted_in"] is True
    assert held.headers["x-keap-product-quota-available"] == "8"
    assert int(held.headers["x-keap-product-quota-expiry-time"]) > time.time() * 1000
