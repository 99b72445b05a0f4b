"""The one-click intake: a one-click commits one intake row and answers; the row
counts as an opt-out until it is folded into the event chain, in batches, by a
thread of the web process, by the sync worker, or by a reader of that person."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from suppression.config.environment import links_from_env
from suppression.config.settings import ConfigError, LinkSettings
from suppression.domain.policy import ALL_PURPOSES, ConsentStatus
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.audit import verify_chain
from suppression.services.consents.events import EventContext
from suppression.services.consents.intake import (
    accept_one_clicks,
    fold_intake,
    one_click_row,
    pending_opt_outs,
)
from suppression.services.consents.recording import record_consent
from suppression.services.rights.erasure import erase_subject
from suppression.store.models import (
    ConsentEvent,
    ConsentState,
    OneClickIntake,
    Subject,
    UnsubscribeAlarm,
)
from suppression.worker.destination_sync import DestinationSync
from suppression.worker.one_click_folding import fold_backlog

# One-clicks are folded by a thread of the app's, and on PostgreSQL written
# through an engine of their own.
pytestmark = pytest.mark.committed

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
BACKGROUND = LinkSettings(page_rate_limit="100000 per minute")  # folds in the background


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), public_base_url="https://optout.example.com", links=BACKGROUND)


@pytest.fixture
def runtime_state(app):
    return app.extensions["suppression"]


def click(clock, purpose: str = ALL_PURPOSES, **extra) -> EventContext:
    return EventContext(
        actor="recipient",
        source="one_click",
        occurred_at=clock(),
        recorded_at=clock(),
        ip="192.0.2.7",
        user_agent="Mail/1.0",
        campaign=extra.get("campaign", "nov"),
        evidence={"link_purpose": purpose},
    )


def accept(runtime_state, clock, address: str, purpose: str = ALL_PURPOSES, **extra) -> None:
    with runtime_state.sessions() as session:
        row = one_click_row(
            runtime_state.vault,
            runtime_state.settings.policy,
            address,
            purpose,
            click(clock, purpose, **extra),
        )
        accept_one_clicks(session, [row])
        session.commit()


def fold(runtime_state):
    return fold_backlog(runtime_state.sessions, runtime_state.vault, runtime_state.settings)


def count(session, model) -> int:
    found = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return found


def test_an_accepted_one_click_is_pending_and_holds_no_plaintext_address(
    runtime_state, session, vault, clock, dump
):
    accept(runtime_state, clock, "jane.doe@example.com", "email_marketing")
    accept(runtime_state, clock, "jane.doe@example.com")
    assert pending_opt_outs(session) == {
        vault.index("jane.doe@example.com"): frozenset({"email_marketing", ALL_PURPOSES})
    }
    assert count(session, ConsentEvent) == 0
    assert b"jane.doe@example.com" not in dump()


def test_a_purpose_no_longer_configured_is_pending_as_all(runtime_state, session, vault, clock):
    accept(runtime_state, clock, "jane.doe@example.com", "retired_purpose")
    assert pending_opt_outs(session) == {vault.index("jane.doe@example.com"): frozenset({"all"})}


def test_folding_records_the_event_state_and_evidence_and_the_chain_verifies(
    runtime_state, session, vault, clock
):
    accept(runtime_state, clock, "jane.doe@example.com")
    clicked_at = clock()
    clock.advance(minutes=5)
    outcome = fold(runtime_state)
    assert (outcome.folded, outcome.recorded["one_click"]) == (1, 1)
    [event] = session.scalars(select(ConsentEvent))
    assert (event.action, event.purpose, event.source, event.actor) == (
        "opted_out",
        ALL_PURPOSES,
        "one_click",
        "recipient",
    )
    assert (event.ip, event.user_agent, event.campaign) == ("192.0.2.7", "Mail/1.0", "nov")
    assert event.occurred_at == clicked_at == event.recorded_at
    [state] = session.scalars(select(ConsentState))
    assert (state.status, state.changed_at, state.event_id) == ("opted_out", clicked_at, event.id)
    subject = session.scalars(select(Subject)).one()
    assert subject.email_index == vault.index("jane.doe@example.com")
    assert subject.last_communication_at == clicked_at
    assert pending_opt_outs(session) == {}
    assert verify_chain(session, vault).intact


def test_repeats_fold_into_one_event_and_the_address_into_one_subject(
    runtime_state, session, clock
):
    for _ in range(3):
        accept(runtime_state, clock, "jane.doe@example.com")
    accept(runtime_state, clock, "jane.doe@example.com", "email_marketing")  # covered by `all`
    assert fold(runtime_state).folded == 4
    assert count(session, ConsentEvent) == 1
    assert count(session, Subject) == 1
    assert count(session, OneClickIntake) == 0


def test_an_older_click_never_overrides_a_newer_opt_in(runtime_state, session, vault, clock):
    accept(runtime_state, clock, "jane.doe@example.com", "email_marketing")
    opted_in_at = clock.advance(minutes=1)
    with runtime_state.sessions() as writer:
        record_consent(
            writer,
            vault,
            "jane.doe@example.com",
            "email_marketing",
            ConsentStatus.OPTED_IN,
            replace(click(clock), source="staff", occurred_at=opted_in_at),
        )
        writer.commit()
    fold(runtime_state)
    actions = [e.action for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))]
    assert actions == ["opted_in", "opted_out"]  # the click is kept as evidence...
    [state] = session.scalars(select(ConsentState))
    assert (state.status, state.changed_at) == ("opted_in", opted_in_at)  # ...and loses
    assert verify_chain(session, vault).intact


def test_an_erased_address_stores_nothing_more(runtime_state, session, vault, clock):
    with runtime_state.sessions() as writer:
        erase_subject(writer, vault, "gone@example.com", "request", click(clock))
        writer.commit()
    events_before = count(session, ConsentEvent)
    accept(runtime_state, clock, "gone@example.com")
    assert fold(runtime_state).recorded.total() == 0
    assert count(session, ConsentEvent) == events_before
    assert count(session, OneClickIntake) == 0


def test_a_batch_counts_towards_the_mass_unsubscribe_alarm(runtime_state, session, clock, vault):
    for i in range(7):
        accept(runtime_state, clock, f"user{i}@bigcorp.example")
        clock.advance(seconds=1)
    rule = AlarmRule(threshold=5, window=timedelta(minutes=10))
    with runtime_state.sessions() as writer:
        outcome = fold_intake(writer, runtime_state.vault, runtime_state.settings.policy, rule)
        writer.commit()
    [alarm] = outcome.alarms
    stored = session.scalars(select(UnsubscribeAlarm)).one()
    assert (stored.domain, stored.campaign, stored.count) == ("bigcorp.example", "nov", 7)
    assert alarm.id == stored.id


def test_the_web_process_folds_in_the_background(app, client, sender, session):
    link = client.post(
        "/v1/unsubscribe-links", json={"email": "jane.doe@example.com"}, headers=sender
    ).get_json()
    response = client.post(urlsplit(link["url"]).path, data=ONE_CLICK)
    assert response.status_code == 200
    deadline = time.monotonic() + 20
    while count(session, ConsentEvent) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    app.extensions["suppression"].folder.stop()  # no thread outlives this test's tables
    assert count(session, ConsentEvent) == 1
    assert count(session, OneClickIntake) == 0


def test_the_preference_page_folds_the_persons_pending_click_first(
    app, runtime_state, client, sender, session, clock
):
    accept(runtime_state, clock, "jane.doe@example.com")
    link = client.post(
        "/v1/unsubscribe-links", json={"email": "jane.doe@example.com"}, headers=sender
    ).get_json()
    page = client.get(urlsplit(link["preferences_url"]).path)
    assert page.status_code == 200
    assert count(session, OneClickIntake) == 0
    [state] = session.scalars(select(ConsentState))
    assert state.status == "opted_out"


def test_a_lookup_and_an_erasure_fold_first(runtime_state, client, make_key, session, clock):
    admin = make_key("admin")
    accept(runtime_state, clock, "jane.doe@example.com")
    found = client.post(
        "/v1/subjects/lookup", json={"email": "jane.doe@example.com"}, headers=admin
    )
    assert found.status_code == 200
    assert [e["action"] for e in found.get_json()["events"]] == ["opted_out"]
    accept(runtime_state, clock, "jane.doe@example.com", "email_marketing")
    erased = client.post(
        "/v1/subjects/erase",
        json={"email": "jane.doe@example.com", "reason": "request"},
        headers=admin,
    )
    assert erased.status_code == 200, erased.get_json()
    assert count(session, OneClickIntake) == 0  # its evidence went with the erasure


def test_each_sync_pass_folds_first(runtime_state, session, clock, vault):
    accept(runtime_state, clock, "jane.doe@example.com")
    worker = DestinationSync(runtime_state.sessions, runtime_state.vault, runtime_state.settings)
    try:
        assert worker.fold_one_clicks() == 1
    finally:
        worker.close()
    assert count(session, ConsentEvent) == 1


def test_processes_configured_from_the_environment_fold_in_the_background():
    assert links_from_env({}).one_click_fold == "background"
    assert links_from_env({"ONE_CLICK_FOLD": "inline"}).one_click_fold == "inline"
    assert links_from_env({"ONE_CLICK_FOLD": "worker"}).one_click_fold == "worker"
    with pytest.raises(ConfigError):
        links_from_env({"ONE_CLICK_FOLD": "later"})


def test_settings_built_in_code_fold_as_production_does():
    assert LinkSettings().one_click_fold == links_from_env({}).one_click_fold == "background"


def test_stopping_the_folder_waits_for_its_thread(app, client, sender):
    link = client.post(
        "/v1/unsubscribe-links", json={"email": "jane.doe@example.com"}, headers=sender
    ).get_json()
    assert client.post(urlsplit(link["url"]).path, data=ONE_CLICK).status_code == 200
    folder = app.extensions["suppression"].folder
    thread = folder._thread
    assert thread is not None
    assert thread.is_alive()
    folder.stop()
    assert not thread.is_alive()  # nothing folds on into the next test's tables


def test_two_folders_share_the_rows_and_fold_each_once(runtime_state, session, clock, vault):
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("SKIP LOCKED is PostgreSQL's; SQLite runs one writer at a time")
    for i in range(6):
        accept(runtime_state, clock, f"user{i}@example.com")
    policy, vault = runtime_state.settings.policy, runtime_state.vault
    first = runtime_state.sessions()
    try:
        # Another folder, midway through its batch: it holds the four oldest rows.
        claim = select(OneClickIntake).order_by(OneClickIntake.id).limit(4)
        assert len(first.scalars(claim.with_for_update(skip_locked=True)).all()) == 4
        with runtime_state.sessions() as second:
            rest = fold_intake(second, vault, policy, AlarmRule())
            second.commit()
    finally:
        first.rollback()  # as if it died: its rows are free again
        first.close()
    assert rest.folded == 2
    assert fold(runtime_state).folded == 4
    assert count(session, ConsentEvent) == 6
    assert count(session, OneClickIntake) == 0
    assert verify_chain(session, vault).intact


@pytest.mark.parametrize("helpers", [0, 2], ids=["in-process", "helper-processes"])
def test_checks_count_a_pending_one_click_at_once(runtime_state, client, sender, clock, helpers):
    accept(runtime_state, clock, "jane@example.com", "email_marketing")
    accept(runtime_state, clock, "everything@example.com")
    accept(runtime_state, clock, "ads-only@example.com", "ad_audiences")
    runtime_state.settings = replace(
        runtime_state.settings, check_processes=helpers, check_parallel_min=2, check_chunk_size=4
    )
    addresses = ["Jane@Example.com", "everything@example.com", "ads-only@example.com"] * 3
    response = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "email_marketing", "addresses": addresses},
        headers=sender,
    )
    assert response.status_code == 200, response.get_json()
    assert [r["reason"] for r in response.get_json()["results"]] == [
        "opted_out",
        "opted_out",
        None,
    ] * 3
    assert count(runtime_state.sessions(), OneClickIntake) == 3  # nothing was folded


def test_a_one_click_survives_the_database_dropping_its_pooled_connection(
    app, client, sender, session, engine, caplog
):
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has no server to drop a connection")
    app.extensions["suppression"].folder.stop()  # rows stay pending: counted below
    links = [
        client.post(
            "/v1/unsubscribe-links", json={"email": f"p{i}@example.com"}, headers=sender
        ).get_json()
        for i in range(2)
    ]
    assert client.post(urlsplit(links[0]["url"]).path, data=ONE_CLICK).status_code == 200
    intake = app.extensions["suppression"].intake_engine
    assert intake.pool.checkedin() == 1  # the connection the next click will be given
    with engine.connect() as admin:  # as a server restart would
        admin.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND application_name = '' AND state = 'idle'"
        )
    assert client.post(urlsplit(links[1]["url"]).path, data=ONE_CLICK).status_code == 200
    assert "intake connection lost" in caplog.text  # the dead one was met, then replaced
    session.expire_all()
    assert count(session, OneClickIntake) == 2
