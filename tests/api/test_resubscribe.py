"""The re-subscribe guard: opted-out, erased or complained addresses are not turned
back to sendable by a sender key; staff with evidence can."""

import pytest
from sqlalchemy import func, select

from suppression.store.models import ConsentEvent

OPT_IN = {"purpose": "email_marketing", "status": "opted_in", "source": "signup_form"}


def post(client, headers, **body):
    return client.post("/v1/consents", json={**OPT_IN, **body}, headers=headers)


def sendable(client, sender, email):
    response = client.post("/v1/checks?detail=all", json={"addresses": [email]}, headers=sender)
    return response.get_json()["results"][0]


@pytest.fixture
def opted_out(client, sender):
    response = post(
        client,
        sender,
        email="gone@example.com",
        status="opted_out",
        purpose="all",
        occurred_at="2026-11-01T00:00:00Z",
    )
    assert response.status_code == 201
    return "gone@example.com"


def test_a_sender_key_cannot_opt_an_opted_out_address_back_in(client, sender, opted_out, session):
    before = session.scalar(select(func.count()).select_from(ConsentEvent))
    session.rollback()
    response = post(client, sender, email=opted_out)
    assert response.status_code == 409
    body = response.get_json()
    assert body["code"] == 409
    assert "opted out" in body["message"]
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == before
    assert sendable(client, sender, opted_out)["reason"] == "opted_out"


def test_an_older_dated_opt_in_is_kept_as_evidence_without_conflict(client, sender, opted_out):
    response = post(client, sender, email=opted_out, occurred_at="2026-10-01T00:00:00Z")
    assert response.status_code == 201
    assert sendable(client, sender, opted_out)["reason"] == "opted_out"


def test_staff_without_evidence_is_refused(client, staff, sender, opted_out):
    assert post(client, staff, email=opted_out).status_code == 409


def test_staff_with_evidence_can_opt_back_in(client, staff, sender, opted_out):
    response = post(client, staff, email=opted_out, evidence={"ticket": "HD-77"})
    assert response.status_code == 201
    assert sendable(client, sender, opted_out) == {
        "email": opted_out,
        "sendable": True,
        "reason": None,
    }


def test_a_complaint_is_lifted_only_by_staff_with_evidence(client, sender, staff):
    client.post("/v1/blocks", json={"email": "c@example.com", "kind": "complaint"}, headers=sender)
    assert post(client, sender, email="c@example.com").status_code == 409
    assert post(client, staff, email="c@example.com").status_code == 409
    response = post(client, staff, email="c@example.com", evidence={"ticket": "HD-9"})
    assert response.status_code == 201
    assert response.get_json()["blocks"] == []
    assert sendable(client, sender, "c@example.com")["sendable"] is True


def test_a_first_opt_in_from_a_sender_is_fine(client, sender):
    assert post(client, sender, email="new@example.com").status_code == 201
