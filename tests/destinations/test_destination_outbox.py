"""The outbox: rows written with the change, only for enabled destinations."""

from dataclasses import replace

from suppression.connectors.settings import destinations_from_env
from suppression.domain.policy import ConsentStatus
from suppression.services.consents.recording import EventContext, record_consent
from suppression.services.destinations.enqueue import enqueue_removals
from suppression.services.destinations.queue_status import (
    pending_removals,
    pushes_for,
    subject_destination_status,
)
from suppression.services.destinations.registry import register_destinations
from suppression.store.models import Subject

ALL_FIVE = {"keap", "meta", "google", "linkedin", "microsoft"}


def test_a_committed_change_writes_one_row_per_enabled_destination(worker, record, outbox_rows):
    subject_id = record("jane@example.com")
    assert outbox_rows(subject_id=subject_id) == 5
    for name in ALL_FIVE:
        assert outbox_rows(subject_id=subject_id, destination=name) == 1


def test_a_rolled_back_change_leaves_no_outbox_row(worker, sessions, vault, clock, outbox_rows):
    ctx = EventContext(actor="t", source="test", occurred_at=clock(), recorded_at=clock())
    with sessions() as session:
        record_consent(session, vault, "gone@example.com", "all", ConsentStatus.OPTED_OUT, ctx)
        session.flush()
        assert session.query(Subject).count() == 1
        session.rollback()
    assert outbox_rows() == 0


def test_no_rows_are_written_before_a_destination_is_registered(record, outbox_rows):
    record("early@example.com")
    assert outbox_rows() == 0


def test_a_switched_off_destination_gets_no_rows(
    make_settings, destination_env, sessions, clock, record, outbox_rows
):
    env = {**destination_env, "KEAP_ENABLED": "false", "META_ENABLED": "no"}
    destinations = destinations_from_env(env)
    with sessions() as session:
        register_destinations(session, destinations, {}, clock())
        session.commit()
    subject_id = record("jane@example.com")
    assert outbox_rows(subject_id=subject_id) == 3
    assert outbox_rows(destination="keap") == 0
    assert outbox_rows(destination="meta") == 0


def test_changes_waiting_for_a_push_share_one_row_per_destination(worker, record, outbox_rows):
    subject_id = record("jane@example.com", purpose="email_marketing")
    record("jane@example.com", purpose="ad_audiences")
    record("jane@example.com", block="hard_bounce")
    assert outbox_rows(subject_id=subject_id) == 5


def test_pending_removals_count_down_to_zero_when_every_destination_confirmed(
    worker, record, sessions, until_processed
):
    subject_id = record("jane@example.com")
    with sessions() as session:
        assert pending_removals(session, subject_id) == 5
    worker.run_pass()
    with sessions() as session:
        assert pending_removals(session, subject_id) == 1  # Google: accepted, not yet done
    until_processed(worker)
    with sessions() as session:
        assert pending_removals(session, subject_id) == 0


def test_erasure_pushes_removals_before_the_address_may_be_dropped(
    worker, record, sessions, clock, fakes, until_processed
):
    subject_id = record("erase.me@example.com", purpose="email_marketing", status="opted_in")
    worker.run_pass()  # sendable: nothing was pushed
    assert fakes.keap.opted_out == {}
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        subject.erased_at = clock()
        enqueue_removals(session, subject_id, clock())
        session.commit()
        assert pending_removals(session, subject_id) == 5
    worker.run_pass()
    until_processed(worker)
    with sessions() as session:
        assert pending_removals(session, subject_id) == 0
        assert {p.reason for p in pushes_for(session, subject_id)} == {"erased"}
    assert fakes.keap.opted_out == {"erase.me@example.com": "Suppression service: erased"}
    assert all(fakes.meta.removed.values())


def test_pushes_for_lists_each_confirmed_push_of_a_subject(
    worker, record, sessions, clock, until_processed
):
    subject_id = record("jane@example.com")
    pushed_at = clock()
    worker.run_pass()
    until_processed(worker)  # Google's push counts once its request is done
    with sessions() as session:
        pushes = pushes_for(session, subject_id)
        statuses = subject_destination_status(session, subject_id)
    assert {p.destination for p in pushes} == ALL_FIVE
    assert {(p.operation, p.reason, p.outcome) for p in pushes} == {
        ("suppress", "opted_out", "confirmed")
    }
    assert {p.pushed_at for p in pushes if p.destination != "google"} == {pushed_at}
    assert [p.pushed_at for p in pushes if p.destination == "google"] == [clock()]
    assert {s.destination for s in statuses} == ALL_FIVE
    assert all(s.settled and s.suppressed and s.reason == "opted_out" for s in statuses)


def test_a_subject_with_no_push_has_no_history(worker, record, sessions):
    subject_id = record("fan@example.com", status="opted_in")
    worker.run_pass()
    with sessions() as session:
        assert pushes_for(session, subject_id) == []
        assert subject_destination_status(session, subject_id) == []


def test_a_destination_that_is_no_longer_configured_is_disabled_in_the_registry(
    worker, make_settings, destination_env, make_worker, record, outbox_rows
):
    env = {k: v for k, v in destination_env.items() if not k.startswith("META_")}
    fewer = replace(make_settings(), destinations=destinations_from_env(env))
    make_worker("worker-2", settings=fewer).register()
    subject_id = record("jane@example.com")
    assert outbox_rows(subject_id=subject_id) == 4
    assert outbox_rows(destination="meta") == 0


def test_two_phase_erasure_drops_the_address_once_every_destination_confirmed(
    worker, record, sessions, vault, clock, fakes, until_processed
):
    from suppression.services.rights.erasure import PENDING, erase_subject

    subject_id = record("leave.me@example.com", status="opted_in")
    worker.run_pass()
    ctx = EventContext(actor="t", source="request", occurred_at=clock(), recorded_at=clock())
    fakes.meta.start_outage(status=503)
    with sessions() as session:
        result = erase_subject(
            session, vault, "leave.me@example.com", "request", ctx, enqueue_removals
        )
        session.commit()
    assert result.status == PENDING
    worker.run_pass()  # Meta is down: the address must stay until it confirms
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        assert subject.email_sealed is not None
        assert pending_removals(session, subject_id) == 2  # Meta, and Google processing
    fakes.meta.end_outage()
    clock.advance(hours=1)
    worker.run_pass()
    until_processed(worker)
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        assert subject.email_sealed is None
        assert subject.erasure_status == "done"
    assert fakes.meta.removed["23850000000000001"]
    assert fakes.keap.opted_out == {"leave.me@example.com": "Suppression service: erased"}


def test_a_rotated_refresh_token_is_kept_sealed_and_only_for_its_seed(worker, sessions, vault):
    from suppression.store.models.destinations import Destination
    from suppression.worker.sealed_tokens import SealedTokenStore

    store = SealedTokenStore(sessions, vault, "keap")
    assert store.load("seed-1") is None
    store.save("seed-1", "rotated-refresh-token")
    with sessions() as session:
        row = session.get(Destination, "keap")
        assert b"rotated-refresh-token" not in row.credential_sealed
    assert store.load("seed-1") == "rotated-refresh-token"
    # The operator put a new token in the environment: the stored one is not used.
    assert store.load("seed-2") is None
