"""Access/portability (export) and erasure, through the API, with their effect on
later checks and on what the database still holds."""

import pytest
from sqlalchemy import select

from suppression.services.consents.audit import verify_chain
from suppression.store.models import ConsentEvent, Subject

JANE = "Jane.Doe@Example.COM"


@pytest.fixture
def jane(client, sender):
    client.post(
        "/v1/consents",
        json={
            "email": JANE,
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "signup",
            "country": "US",
            "evidence": {"form": "footer", "text": "Yes, send me news"},
            "notice_version": "privacy-v7",
        },
        headers={**sender, "User-Agent": "Browser/1.0"},
    )
    client.post("/v1/blocks", json={"email": JANE, "kind": "hard_bounce"}, headers=sender)
    client.post("/v1/relationships", json={"email": JANE, "kind": "purchase"}, headers=sender)
    return JANE


def check(client, sender, email):
    response = client.post("/v1/checks?detail=all", json={"addresses": [email]}, headers=sender)
    return response.get_json()["results"][0]["reason"]


def test_export_holds_every_stored_fact(client, staff, jane):
    lookup = client.post("/v1/subjects/lookup", json={"email": jane}, headers=staff)
    assert lookup.status_code == 200
    response = client.post(
        "/v1/subjects/export", json={"email": jane, "reason": "DSAR-12"}, headers=staff
    )
    assert response.status_code == 200
    document = response.get_json()
    assert document["format"] == "suppression-export/1"
    assert document["email"] == "jane.doe@example.com"
    assert document["subject"]["country"] == "US"
    assert document["subject"]["last_purchase_at"] == "2026-11-29T12:00:00Z"
    assert document["consents"]["email_marketing"]["status"] == "opted_in"
    assert [b["kind"] for b in document["blocks"]] == ["hard_bounce"]
    assert [e["action"] for e in document["events"]] == ["opted_in", "hard_bounce", "purchase"]
    first = document["events"][0]
    assert first["evidence"] == {"form": "footer", "text": "Yes, send me news"}
    assert first["user_agent"] == "Browser/1.0"
    assert first["notice_version"] == "privacy-v7"
    assert document["decisions"]["email_marketing"] == {"sendable": False, "reason": "bounced"}
    assert [a["action"] for a in document["access_log"]] == ["lookup"]


def test_an_export_is_itself_in_the_access_log(client, staff, jane):
    client.post("/v1/subjects/export", json={"email": jane}, headers=staff)
    second = client.post("/v1/subjects/export", json={"email": jane}, headers=staff).get_json()
    assert [a["action"] for a in second["access_log"]] == ["export"]
    assert second["access_log"][0]["actor"] == "api_key:staff-key"


def test_export_of_an_address_never_stored_says_so(client, staff):
    document = client.post(
        "/v1/subjects/export", json={"email": "nobody@example.com"}, headers=staff
    ).get_json()
    assert document["stored"] is False
    assert "events" not in document


def test_export_needs_staff_or_admin(client, sender, jane):
    assert (
        client.post("/v1/subjects/export", json={"email": jane}, headers=sender).status_code == 403
    )


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasure_keeps_the_address_suppressed(client, admin, sender, jane):
    response = client.post(
        "/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin
    )
    assert response.status_code == 200
    assert response.get_json()["status"] == "done"
    assert check(client, sender, " JANE.doe@example.com") == "erased"
    assert check(client, sender, jane) == "erased"


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_after_erasure_a_dump_holds_no_trace_but_the_keyed_index(
    client, admin, sender, jane, session, vault, dump
):
    client.post("/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin)
    subject = session.scalars(select(Subject)).one()
    assert subject.email_index == vault.index("jane.doe@example.com")
    assert subject.email_sealed is None
    assert (subject.country, subject.last_purchase_at) == (None, None)
    for event in session.scalars(select(ConsentEvent)):
        assert (event.ip, event.user_agent, event.evidence_sealed, event.country) == (None,) * 4
    session.rollback()
    data = dump().lower()
    for needle in (b"jane", b"browser/1.0", b"yes, send me news", b"footer"):
        assert needle not in data, needle


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_the_chain_still_verifies_after_erasure(client, admin, jane, session, vault):
    client.post("/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin)
    report = verify_chain(session, vault)
    assert report.intact
    assert report.checked == 4  # three events and the erasure itself


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasing_an_address_never_seen_suppresses_it(client, admin, sender):
    response = client.post(
        "/v1/subjects/erase", json={"email": "kid@example.com", "reason": "child"}, headers=admin
    )
    assert response.status_code == 200
    assert check(client, sender, "kid@example.com") == "erased"


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasing_twice_is_harmless(client, admin, jane):
    first = client.post(
        "/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin
    ).get_json()
    second = client.post(
        "/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin
    ).get_json()
    assert first == second


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasure_is_admin_only(client, staff, jane):
    assert (
        client.post(
            "/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=staff
        ).status_code
        == 403
    )


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasure_needs_a_known_reason(client, admin, jane):
    response = client.post(
        "/v1/subjects/erase", json={"email": jane, "reason": "because"}, headers=admin
    )
    assert response.status_code == 422
    assert "reason" in response.get_json()["errors"]["json"]


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_a_sender_cannot_resubscribe_an_erased_address(client, admin, sender, jane):
    client.post("/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin)
    response = client.post(
        "/v1/consents",
        json={"email": jane, "purpose": "all", "status": "opted_in", "source": "crm_sync"},
        headers=sender,
    )
    assert response.status_code == 409
    assert "erased" in response.get_json()["message"]
    assert check(client, sender, jane) == "erased"


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_staff_with_evidence_can_restore_an_erased_address(client, admin, staff, sender, jane):
    client.post("/v1/subjects/erase", json={"email": jane, "reason": "request"}, headers=admin)
    response = client.post(
        "/v1/consents",
        json={
            "email": jane,
            "purpose": "all",
            "status": "opted_in",
            "source": "phone",
            "evidence": {"ticket": "HD-5", "note": "signed up again in the shop"},
        },
        headers=staff,
    )
    assert response.status_code == 201
    assert response.get_json()["erased_at"] is None
