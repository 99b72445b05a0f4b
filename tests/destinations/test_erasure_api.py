"""Erasure through the API with destinations enabled: two-phase, visible status."""

from suppression.models import Subject


def test_erasure_is_pending_until_every_destination_confirmed(
    client, admin, sender, staff, worker, record, sessions, fakes
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
        subject = session.get(Subject, subject_id)
        assert subject.erasure_status == "done"
        assert subject.email_sealed is None
    assert fakes.keap.opted_out == {"leave.me@example.com": "Suppression service: erased"}
