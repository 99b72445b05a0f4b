"""--full: recompute what each destination should hold, push the difference."""

import hashlib
import json
from dataclasses import replace

from suppression.connectors.settings import destinations_from_env
from suppression.store.models.destinations import Destination

META_AUDIENCE = "23850000000000001"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def by_name(reports):
    return {report.destination: report for report in reports}


def test_suppressions_recorded_before_a_destination_existed_are_pushed_by_its_first_pass(
    make_worker, record, fakes, outbox_rows
):
    record("old.optout@example.com", purpose="ad_audiences")
    record("customer@example.com", status="opted_in")
    assert outbox_rows() == 0  # no destination registered yet
    worker = make_worker()
    reports = by_name(worker.run_pass())  # new destinations: a full reconcile runs first
    assert reports["meta"].reconciled == 1
    assert reports["meta"].suppressed == 1
    assert fakes.meta.removed[META_AUDIENCE] == {sha("old.optout@example.com")}
    assert reports["keap"].reconciled == 0
    assert fakes.keap.opted_out == {}


def test_full_reconcile_skips_what_was_confirmed_and_pushes_what_was_missed(
    worker, record, fakes, sessions, clock
):
    record("pushed@example.com", purpose="ad_audiences")
    worker.run_pass()
    missed = record("missed@example.com", purpose="ad_audiences")
    with sessions() as session:  # a row lost behind the service's back (restore from backup)
        from suppression.store.models.destinations import OutboxRow

        session.query(OutboxRow).filter_by(subject_id=missed).delete()
        session.commit()
    assert by_name(worker.run_pass())["meta"].claimed == 0
    reports = by_name(worker.run_pass(full=True))
    assert reports["meta"].reconciled == 1
    assert reports["meta"].suppressed == 1
    deletes = [r for r in fakes.meta.requests if r.method == "DELETE"]
    assert [json.loads(r.body["payload"])["data"] for r in deletes] == [
        [sha("pushed@example.com")],
        [sha("missed@example.com")],
    ]


def test_a_new_audience_makes_everyone_suppressed_go_to_it(
    worker, make_settings, destination_env, make_worker, record, fakes
):
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    fakes.meta.add_audience("23850000000000002")
    env = {**destination_env, "META_AUDIENCE_IDS": "23850000000000001,23850000000000002"}
    wider = make_worker(
        "worker-2", settings=replace(make_settings(), destinations=destinations_from_env(env))
    )
    reports = by_name(wider.run_pass(["meta"]))
    assert reports["meta"].reconciled == 1
    assert fakes.meta.removed["23850000000000002"] == {sha("jane@example.com")}


def test_a_destination_switched_back_on_catches_up_on_what_it_missed(
    worker, make_settings, destination_env, make_worker, record, fakes, sessions
):
    off = replace(
        make_settings(),
        destinations=destinations_from_env({**destination_env, "KEAP_ENABLED": "false"}),
    )
    make_worker("worker-off", settings=off).register()
    record("jane@example.com", purpose="email_marketing")
    with sessions() as session:
        assert session.get(Destination, "keap").enabled is False
    reports = by_name(worker.run_pass(["keap"]))
    assert reports["keap"].reconciled == 1
    assert fakes.keap.opted_out == {"jane@example.com": "Suppression service: opted_out"}


def test_full_reconcile_forgets_confirmations_of_people_sendable_again(
    worker, record, fakes, sessions, clock
):
    from suppression.store.models.destinations import DestinationSubject, OutboxRow

    subject = record("jane@example.com", purpose="ad_audiences")
    worker.run_pass()
    clock.advance(days=1)
    record("jane@example.com", purpose="ad_audiences", status="opted_in")
    with sessions() as session:
        session.query(OutboxRow).delete()
        session.commit()
    reports = by_name(worker.run_pass(full=True))
    assert reports["meta"].reconciled == 1
    assert reports["meta"].unchanged == 1
    with sessions() as session:
        state = session.get(DestinationSubject, ("meta", subject))
        assert state.suppressed is False
