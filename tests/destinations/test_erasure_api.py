"""Erasure through the API with destinations enabled: two-phase, visible status."""

import pytest
from sqlalchemy import select

from suppression.store.models import ConsentEvent, Subject


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasure_is_pending_until_every_destination_confirmed(
    client, admin, sender, staff, worker, record, sessions, fakes, until_processed
):
    subject_id = record("leave.me@example.com", status="opted_in")
    worker.run_pass()
    response = client.post(
        "/v1/subjects/erase",
        json={"email": "leave.me@example.com", "reason": "request"},
        headers=admin,
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "pending"
    check = client.post(
        "/v1/checks?detail=all", json={"addresses": ["leave.me@example.com"]}, headers=sender
    )
    assert check.get_json()["results"][0]["reason"] == "erased"  # suppressed at once
    export = client.post(
        "/v1/subjects/export", json={"email": "leave.me@example.com"}, headers=staff
    ).get_json()
    assert export["subject"]["erasure_status"] == "pending"
    assert {d["destination"] for d in export["destinations"]} >= {"keap", "meta"}
    worker.run_pass()
    with sessions() as session:
        assert session.get(Subject, subject_id).erasure_status == "pending"  # Google processing
    until_processed(worker)
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        assert subject.erasure_status == "done"
        assert subject.email_sealed is None
    assert fakes.keap.opted_out == {"leave.me@example.com": "Suppression service: erased"}


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_writes_during_a_pending_erasure_keep_no_personal_field(
    client, admin, sender, worker, record, sessions, until_processed
):
    subject_id = record("leave.me@example.com", status="opted_in", country="US")
    worker.run_pass()
    erase = {"email": "leave.me@example.com", "reason": "request"}
    assert client.post("/v1/subjects/erase", json=erase, headers=admin).json["status"] == "pending"
    bounce = {
        "email": "leave.me@example.com",
        "kind": "hard_bounce",
        "country": "DE",
        "evidence": {"reply": "leave.me@example.com: mailbox full"},
        "campaign": "december",
    }
    headers = {**sender, "User-Agent": "Bouncer/2.0"}
    assert client.post("/v1/blocks", json=bounce, headers=headers).status_code == 201
    purchase = {"email": "leave.me@example.com", "kind": "purchase"}
    assert client.post("/v1/relationships", json=purchase, headers=sender).status_code == 201
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        assert (subject.country, subject.last_purchase_at) == ("US", None)  # as before
        for event in session.scalars(
            select(ConsentEvent).where(ConsentEvent.action.in_(["hard_bounce", "purchase"]))
        ):
            personal = (
                event.ip,
                event.user_agent,
                event.evidence_sealed,
                event.country,
                event.campaign,
            )
            assert personal == (None,) * 5, event.action
    worker.run_pass()
    until_processed(worker)
    with sessions() as session:
        subject = session.get(Subject, subject_id)
        assert (subject.erasure_status, subject.country, subject.email_sealed) == (
            "done",
            None,
            None,
        )
        assert (
            session.scalars(select(ConsentEvent.ip).where(ConsentEvent.ip.is_not(None))).all() == []
        )
