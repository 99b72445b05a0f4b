"""Keap back into the service: Keap's own opt-outs, spam reports and bounces are
read from the fake Keap's status list and become events with source `keap`."""

import hashlib
import re
from dataclasses import replace
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select, update

from suppression.cli.main import main
from suppression.connectors.base import TransientError
from suppression.connectors.keap_pull import KeapStatusReader
from suppression.connectors.settings import destinations_from_env
from suppression.services.staff.accounts import create_staff_user
from suppression.store.models import Block, ConsentEvent, ConsentState, Subject
from suppression.store.models.destinations import DestinationSubject, OutboxRow
from suppression.store.models.keap_pull import KeapPullCursor

META_AUDIENCE = "23850000000000001"
STAFF_PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def destination_env(destination_env):
    """The pull at its default interval (the other destination tests turn it off)."""
    return {**destination_env, "KEAP_PULL_MINUTES": "15"}


@pytest.fixture
def keap(fakes, clock):
    """The fake Keap on the test clock: statuses set "inside Keap" carry its time."""
    fakes.keap.now = clock
    return fakes.keap


def list_calls(fake) -> list:
    return [r for r in fake.requests if r.method == "GET" and r.path.endswith("/emailAddresses")]


def keap_events(sessions) -> list[tuple[str, str | None]]:
    with sessions() as session:
        rows = session.execute(
            select(ConsentEvent.action, ConsentEvent.purpose)
            .where(ConsentEvent.source == "keap")
            .order_by(ConsentEvent.id)
        )
        return [tuple(row) for row in rows]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("LIST_UNSUBSCRIBE", ("opted_out", "all")),
        ("MANUAL", ("opted_out", "all")),
        ("ADMIN", ("opted_out", "all")),
        ("SYSTEM", ("opted_out", "all")),
        ("SPAM", ("complaint", None)),
        ("FEEDBACK", ("complaint", None)),
        ("BOUNCE", ("hard_bounce", None)),
        ("HARD_BOUNCE", ("hard_bounce", None)),
    ],
)
def test_each_keap_status_becomes_its_event_with_source_keap(
    status, expected, worker, keap, clock, sessions
):
    keap.set_status("jane@example.com", status, at=clock() - timedelta(hours=1))
    worker.run_pass()
    assert keap_events(sessions) == [expected]
    with sessions() as session:
        if expected[0] == "opted_out":
            state = session.scalars(select(ConsentState)).one()
            assert (state.purpose, state.status, state.source) == ("all", "opted_out", "keap")
            assert state.changed_at == clock() - timedelta(hours=1)  # Keap's create_time
        else:
            block = session.scalars(select(Block)).one()
            assert (block.kind, block.is_active, block.source) == (expected[0], True, "keap")


@pytest.mark.parametrize(
    "status",
    ["NON_MARKETABLE", "UNENGAGED_NON_MARKETABLE", "LOCKDOWN", "INVALID", "DEACTIVATED"],
)
def test_a_non_marketable_status_that_says_nothing_about_the_person_records_nothing(
    status, worker, keap, sessions
):
    keap.set_status("jane@example.com", status)
    worker.run_pass()
    assert keap_events(sessions) == []
    with sessions() as session:
        assert session.scalars(select(Subject)).all() == []


def test_an_address_keap_reports_marketable_changes_nothing(worker, keap, record, sessions):
    record("jane@example.com", purpose="email_marketing", status="opted_in")
    for address, status in [
        ("jane@example.com", "SINGLE_OPT_IN"),
        ("john@example.com", "DOUBLE_OPT_IN"),
        ("ann@example.com", "CONFIRMED"),
        ("bob@example.com", "UNENGAGED_MARKETABLE"),
    ]:
        keap.set_status(address, status)
    worker.run_pass()
    assert keap_events(sessions) == []
    with sessions() as session:
        assert len(session.scalars(select(Subject)).all()) == 1
        assert session.scalars(select(ConsentState.status)).one() == "opted_in"
    assert keap.list_queries[0]["filter"] == "opted_in==false"


def test_the_pull_asks_keap_only_for_non_marketable_addresses_newest_first(worker, keap):
    worker.run_pass()
    # The swagger's filter form, newest status first, full pages.
    assert keap.list_queries == [
        {
            "filter": "opted_in==false",
            "order_by": "create_time desc",
            "page_size": "1000",
        }
    ]


def test_pages_are_followed_until_keap_gives_no_next_page_token(
    make_worker, keap, settings, clock, sessions
):
    for n in range(5):
        keap.set_status(f"person{n}@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(n))
    reader = KeapStatusReader(settings.destinations.keap, page_size=2)
    worker = make_worker(keap_reader=reader)
    worker.register()
    report = worker.pull_keap()
    assert report is not None
    assert report.complete
    assert (report.read, report.recorded) == (5, 5)
    assert len(list_calls(keap)) == 3
    assert [q.get("page_token") is not None for q in keap.list_queries] == [False, True, True]
    assert len(keap_events(sessions)) == 5


def test_the_next_pull_reads_only_down_to_where_the_last_one_ended(
    make_worker, keap, settings, clock, sessions
):
    for n in range(4):
        keap.set_status(f"old{n}@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(days=n))
    worker = make_worker(keap_reader=KeapStatusReader(settings.destinations.keap, page_size=1))
    worker.register()
    assert worker.pull_keap().recorded == 4
    with sessions() as session:
        cursor = session.get(KeapPullCursor, "keap")
        assert cursor.high_water_at == clock()  # the newest create_time read
        assert cursor.completed_at == clock()
    clock.advance(minutes=15)
    keap.set_status("new@example.com", "SPAM")
    calls_before = len(list_calls(keap))
    report = worker.pull_keap()
    # Newest first: the new address, then the one at the mark, then one older page.
    assert (report.read, report.recorded, report.known) == (2, 1, 1)
    assert len(list_calls(keap)) - calls_before == 3
    assert keap_events(sessions)[-1] == ("complaint", None)


def test_a_failed_pull_keeps_the_mark_and_tries_again_when_next_due(worker, keap, clock, sessions):
    keap.set_status("jane@example.com", "HARD_BOUNCE", at=clock() - timedelta(hours=2))
    keap.fail_next(1, status=503)
    report = worker.pull_keap()
    assert report is not None
    assert report.error == "Keap: HTTP 503"
    with sessions() as session:
        cursor = session.get(KeapPullCursor, "keap")
        assert (cursor.high_water_at, cursor.last_error) == (None, "Keap: HTTP 503")
    assert worker.pull_keap() is None  # not due yet
    clock.advance(minutes=15)
    assert worker.pull_keap().recorded == 1
    assert keap_events(sessions) == [("hard_bounce", None)]


def test_a_pull_runs_at_most_every_keap_pull_minutes(worker, keap, clock):
    worker.run_pass()
    worker.run_pass()
    assert len(list_calls(keap)) == 1
    clock.advance(minutes=14, seconds=59)
    worker.run_pass()
    assert len(list_calls(keap)) == 1
    clock.advance(seconds=1)
    worker.run_pass()
    assert len(list_calls(keap)) == 2


def test_keap_pull_minutes_is_a_setting(destination_env, settings, make_worker, keap, clock):
    def worker_with(minutes: str):
        env = {**destination_env, "KEAP_PULL_MINUTES": minutes}
        worker = make_worker(settings=replace(settings, destinations=destinations_from_env(env)))
        worker.register()
        return worker

    five = worker_with("5")
    five.run_pass()
    clock.advance(minutes=5)
    five.run_pass()
    assert len(list_calls(keap)) == 2
    never = worker_with("0")
    clock.advance(minutes=60)
    never.run_pass()
    assert never.keap_pull is None
    assert len(list_calls(keap)) == 2


def test_reading_the_same_page_twice_records_nothing_twice(worker, keap, clock, sessions):
    keap.set_status("jane@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(hours=3))
    keap.set_status("john@example.com", "SPAM", at=clock() - timedelta(hours=2))
    keap.set_status("ann@example.com", "HARD_BOUNCE", at=clock() - timedelta(hours=1))
    assert worker.pull_keap().recorded == 3
    with sessions() as session:  # forget where the last pull ended: read it all again
        session.execute(update(KeapPullCursor).values(high_water_at=None, pulled_at=None))
        session.commit()
    again = worker.pull_keap()
    assert (again.read, again.recorded, again.known) == (3, 0, 3)
    assert sorted(keap_events(sessions)) == [
        ("complaint", None),
        ("hard_bounce", None),
        ("opted_out", "all"),
    ]


def test_an_event_from_keap_reaches_every_other_destination_and_never_keap(
    worker, keap, clock, sessions, fakes, outbox_rows, until_processed
):
    keap.set_status("jane@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(minutes=5))
    worker.run_pass()
    assert fakes.meta.removed[META_AUDIENCE] == {sha("jane@example.com")}
    assert fakes.linkedin.removed["880001"] == {sha("jane@example.com")}
    assert fakes.microsoft.removed["9000001"] == {sha("jane@example.com")}
    assert keap.opted_out == {}  # nothing was sent back to Keap
    assert [r.method for r in keap.requests] == ["GET"]
    assert outbox_rows(destination="keap") == 0
    until_processed(worker)  # Google removes only after accepting the request
    assert fakes.google.removed["5550001"] == {sha("jane@example.com")}
    assert keap.opted_out == {}
    with sessions() as session:
        held = session.scalars(select(DestinationSubject).filter_by(destination="keap")).one()
        assert (held.suppressed, held.reason) == (True, "opted_out")
    # A full reconcile of Keap later finds it already holds the person suppressed.
    reports = {r.destination: r for r in worker.run_pass(names=["keap"], full=True)}
    assert reports["keap"].suppressed == 0
    assert keap.opted_out == {}


def test_our_own_opt_out_read_back_from_keap_records_nothing(worker, keap, record, clock, sessions):
    record("jane@example.com", purpose="email_marketing")
    worker.run_pass()  # pushed: Keap now lists the address as MANUAL
    assert keap.statuses["jane@example.com"][0] == "MANUAL"
    clock.advance(minutes=15)
    report = worker.pull_keap()
    assert (report.read, report.recorded, report.known) == (1, 0, 1)
    assert keap_events(sessions) == []


def test_an_older_keap_opt_out_never_overrides_a_newer_opt_in_here(
    worker, keap, record, clock, sessions
):
    record("jane@example.com", purpose="all", status="opted_in")
    keap.set_status("jane@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(days=30))
    worker.run_pass()
    assert keap_events(sessions) == [("opted_out", "all")]  # kept as evidence
    with sessions() as session:
        assert session.scalars(select(ConsentState.status)).one() == "opted_in"


def test_an_erased_subject_gets_nothing_new_from_keap(worker, keap, record, clock, sessions):
    subject_id = record("gone@example.com")
    with sessions() as session:
        session.execute(update(Subject).where(Subject.id == subject_id).values(erased_at=clock()))
        session.commit()
    keap.set_status("gone@example.com", "HARD_BOUNCE", at=clock() + timedelta(minutes=1))
    clock.advance(minutes=2)
    report = worker.pull_keap()
    assert (report.read, report.known, report.recorded) == (1, 1, 0)
    assert keap_events(sessions) == []


def test_an_address_keap_cannot_be_read_back_is_skipped(worker, keap, sessions):
    keap.set_status("not an address", "LIST_UNSUBSCRIBE")
    report = worker.pull_keap()
    assert (report.read, report.unreadable, report.recorded) == (1, 1, 0)
    assert keap_events(sessions) == []


def test_the_fake_keap_refuses_what_the_swagger_does_not_allow(worker, keap):
    base = worker.keap_pull.reader.base_url
    headers = {"X-Keap-API-Key": keap.api_key}

    def status(**params) -> int:
        url = f"{base}/rest/v2/emailAddresses"
        return requests.get(url, params=params, headers=headers, timeout=5).status_code

    assert status(page_size="1001") == 400
    assert status(filter="opted_in=false") == 400
    assert status(filter="status==SPAM") == 400
    assert status(filter="statuses==NOPE") == 400
    assert status(order_by="name asc") == 400
    assert status(filter="statuses==SPAM,HARD_BOUNCE;opted_in==false", page_size="0") == 200
    url = f"{base}/rest/v2/emailAddresses"
    assert requests.get(url, timeout=5).status_code == 401


def test_the_reader_raises_a_transient_error_on_an_unreadable_answer(keap, settings):
    keap.fail_next(1, status=200, body="not json")
    reader = KeapStatusReader(settings.destinations.keap)
    try:
        with pytest.raises(TransientError):
            reader.page()
    finally:
        reader.close()


# The story a new user tries --------------------------------------------------


def test_an_unsubscribe_inside_keap_suppresses_the_person_everywhere_after_one_sync(
    cli, keap, fakes, client, sender, app, clock
):
    keap.set_status("jane.doe@example.com", "LIST_UNSUBSCRIBE", at=clock() - timedelta(minutes=3))
    result = cli.invoke(main, ["sync"])
    assert result.exit_code == 0, result.output
    assert "jane" not in result.output

    check = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "email_marketing", "addresses": ["jane.doe@example.com"]},
        headers=sender,
    ).get_json()
    assert [(r["sendable"], r["reason"]) for r in check["results"]] == [(False, "opted_out")]
    assert fakes.meta.removed[META_AUDIENCE] == {sha("jane.doe@example.com")}
    assert keap.opted_out == {}

    session = app.extensions["suppression"].sessions()
    create_staff_user(session, "alice", "staff", STAFF_PASSWORD, clock())
    session.commit()
    session.close()
    token = CSRF.search(client.get("/admin/sign-in").get_data(as_text=True)).group(1)
    client.post(
        "/admin/sign-in",
        data={"username": "alice", "password": STAFF_PASSWORD, "csrf_token": token},
    )
    token = CSRF.search(client.get("/admin/").get_data(as_text=True)).group(1)
    found = client.post(
        "/admin/search", data={"email": "jane.doe@example.com", "reason": "", "csrf_token": token}
    )
    assert found.status_code == 303
    page = re.sub(r"\s+", " ", client.get(found.headers["Location"]).get_data(as_text=True))
    timeline = page[page.index('id="timeline"') :]
    assert "opted out" in timeline
    assert "Keap (pulled)" in timeline  # the channel, named for staff
    assert "<code>keap</code>" in timeline  # and the raw source beneath it
    assert "LIST_UNSUBSCRIBE" in timeline  # Keap's status, kept as evidence
    with app.extensions["suppression"].sessions() as session:
        assert session.scalar(select(OutboxRow.id).where(OutboxRow.destination == "keap")) is None
