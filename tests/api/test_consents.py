from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from suppression.services.consents.evidence import open_evidence
from suppression.store.models import ConsentEvent, Subject

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


def consent(client, headers, **fields):
    body = {"purpose": "email_marketing", "status": "opted_out", "source": "signup_form"}
    body.update(fields)
    return client.post("/v1/consents", json=body, headers=headers)


def check(client, headers, addresses, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": addresses}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return [(r["sendable"], r["reason"]) for r in response.get_json()["results"]]


def count(session, model):
    return session.scalar(select(func.count()).select_from(model))


def test_opt_out_answers_201_with_the_subjects_state(client, sender):
    response = consent(client, sender, email="Jane.Doe@Example.COM", source="email_request")
    assert response.status_code == 201
    body = response.get_json()
    assert body["email"] == "jane.doe@example.com"
    assert body["consents"]["email_marketing"]["status"] == "opted_out"
    assert body["consents"]["email_marketing"]["source"] == "email_request"
    assert body["consents"]["email_marketing"]["changed_at"] == "2026-11-29T12:00:00Z"
    assert body["decisions"]["email_marketing"] == {"sendable": False, "reason": "opted_out"}
    assert body["decisions"]["ad_audiences"] == {"sendable": True, "reason": None}
    assert "events" not in body


def test_opt_out_of_all_covers_every_purpose(client, sender):
    consent(client, sender, email="a@example.com", purpose="all")
    assert check(client, sender, ["a@example.com"]) == [(False, "opted_out")]
    assert check(client, sender, ["a@example.com"], "ad_audiences") == [(False, "opted_out")]


def test_newer_purpose_opt_in_beats_older_opt_out_of_all(client, sender, staff):
    consent(
        client, sender, email="a@example.com", purpose="all", occurred_at="2026-01-01T00:00:00Z"
    )
    response = consent(
        client,
        staff,
        email="a@example.com",
        status="opted_in",
        occurred_at="2026-02-01T00:00:00Z",
        evidence={"ticket": "HD-1"},
    )
    assert response.status_code == 201
    assert check(client, sender, ["a@example.com"]) == [(True, None)]
    assert check(client, sender, ["a@example.com"], "ad_audiences") == [(False, "opted_out")]


def test_an_older_event_arriving_late_never_wins(client, sender, session):
    consent(
        client,
        sender,
        email="a@example.com",
        status="opted_out",
        occurred_at="2026-06-01T00:00:00Z",
    )
    late = consent(
        client, sender, email="a@example.com", status="opted_in", occurred_at="2026-05-01T00:00:00Z"
    )
    assert late.status_code == 201
    assert late.get_json()["consents"]["email_marketing"]["status"] == "opted_out"
    assert check(client, sender, ["a@example.com"]) == [(False, "opted_out")]
    assert count(session, ConsentEvent) == 2  # the late event is still kept as evidence


def test_the_event_keeps_its_evidence(client, sender, session, vault):
    response = client.post(
        "/v1/consents",
        json={
            "email": "a@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "signup_form",
            "campaign": "spring",
            "notice_version": "privacy-v7",
            "evidence": {"form": "footer", "text": "Send me news"},
        },
        headers={**sender, "User-Agent": "FormBot/1.0"},
    )
    assert response.status_code == 201
    event = session.scalars(select(ConsentEvent)).one()
    assert event.action == "opted_in"
    assert event.source == "signup_form"
    assert event.actor == "api_key:sender-key"
    assert event.campaign == "spring"
    assert event.notice_version == "privacy-v7"
    assert open_evidence(vault, event.evidence_sealed).value == {
        "form": "footer",
        "text": "Send me news",
    }
    assert event.user_agent == "FormBot/1.0"
    assert event.ip == "127.0.0.1"
    assert event.occurred_at == event.recorded_at


def test_country_hint_is_stored_and_declared_country_wins_over_later_hints(client, sender):
    body = consent(
        client, sender, email="a@example.com", status="opted_in", country="ca"
    ).get_json()
    assert (body["country"], body["country_source"]) == ("CA", "hint")
    body = consent(
        client,
        sender,
        email="a@example.com",
        status="opted_in",
        country="US",
        country_source="declared",
    ).get_json()
    assert (body["country"], body["country_source"]) == ("US", "declared")
    body = consent(
        client, sender, email="a@example.com", status="opted_in", country="DE"
    ).get_json()
    assert (body["country"], body["country_source"]) == ("US", "declared")


def test_inferred_country_is_reported_when_nothing_was_said(client, sender):
    body = consent(client, sender, email="someone@shop.co.uk").get_json()
    assert (body["country"], body["country_source"]) == ("GB", "inferred")


def test_invalid_address_is_422_naming_the_field_and_stores_nothing(client, sender, session):
    response = consent(client, sender, email="not-an-address")
    assert response.status_code == 422
    body = response.get_json()
    assert body["status"] == "Unprocessable Entity"
    assert "email" in body["errors"]["json"]
    assert "email" in body["message"]
    assert count(session, Subject) == 0


def test_unknown_purpose_is_422_and_stores_nothing(client, sender, session):
    response = consent(client, sender, email="a@example.com", purpose="sms")
    assert response.status_code == 422
    assert "purpose" in response.get_json()["errors"]
    assert count(session, Subject) == 0


def test_unknown_country_is_422(client, sender, session):
    response = consent(client, sender, email="a@example.com", country="XX")
    assert response.status_code == 422
    assert "country" in response.get_json()["errors"]["json"]
    assert count(session, Subject) == 0


def test_missing_fields_are_422_naming_each(client, sender):
    response = client.post("/v1/consents", json={"email": "a@example.com"}, headers=sender)
    assert response.status_code == 422
    assert set(response.get_json()["errors"]["json"]) == {"purpose", "status", "source"}


def test_malformed_json_is_400(client, sender):
    response = client.post(
        "/v1/consents", data="{not json", content_type="application/json", headers=sender
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == 400


def test_future_occurred_at_is_rejected(client, sender, session):
    response = consent(client, sender, email="a@example.com", occurred_at="2027-01-01T00:00:00Z")
    assert response.status_code == 422
    assert "occurred_at" in response.get_json()["errors"]
    assert count(session, Subject) == 0


def test_no_plaintext_address_in_the_subjects_table(client, sender, session):
    consent(client, sender, email="Secret.Person@Example.com")
    subject = session.scalars(select(Subject)).one()
    assert b"secret.person" not in subject.email_index
    assert b"secret.person" not in (subject.email_sealed or b"")
    assert len(subject.email_index) == 32


def test_a_sender_may_not_replace_a_country_staff_declared(client, sender, staff, session):
    # Staff recorded that the person lives in Germany: an EEA address, never mailed.
    declared = {"country": "DE", "country_source": "declared", "evidence": {"ticket": "T-7"}}
    response = consent(client, staff, email="hans@example.com", status="opted_in", **declared)
    assert response.status_code == 201
    events = count(session, ConsentEvent)
    session.rollback()
    for status in ("opted_in", "opted_out"):
        moved = consent(
            client,
            sender,
            email="hans@example.com",
            status=status,
            country="US",
            country_source="declared",
        )
        assert moved.status_code == 409
        body = moved.get_json()
        assert body["code"] == 409
        assert "country" in body["errors"]
    assert count(session, ConsentEvent) == events
    assert check(client, sender, ["hans@example.com"]) == [(False, "eea")]


def test_a_sender_may_declare_a_country_where_none_or_the_same_is_declared(client, sender, staff):
    first = consent(client, sender, email="a@example.com", country="CA", country_source="declared")
    assert first.status_code == 201
    again = consent(client, sender, email="a@example.com", country="ca", country_source="declared")
    assert again.status_code == 201
    assert (again.get_json()["country"], again.get_json()["country_source"]) == ("CA", "declared")
    # Staff may change it; a hint from a sender is taken and changes nothing.
    moved = consent(client, staff, email="a@example.com", country="GB", country_source="declared")
    assert (moved.get_json()["country"], moved.get_json()["country_source"]) == ("GB", "declared")
    hinted = consent(client, sender, email="a@example.com", country="US")
    assert hinted.status_code == 201
    assert hinted.get_json()["country"] == "GB"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_an_opt_in_dated_minutes_ahead_cannot_outrank_the_persons_opt_out(
    app, client, sender, admin, clock
):
    """A time ahead of the server's (within the clock-skew allowance) is taken as
    now: else a sender's opt-in dated 4 minutes ahead would outrank the person's
    one-click opt-out a minute later, and the state would stay opted in."""
    ahead = (clock() + timedelta(minutes=4)).isoformat()
    response = consent(
        client, sender, email="li@example.com", status="opted_in", country="CA", occurred_at=ahead
    )
    assert response.status_code == 201
    assert response.get_json()["consents"]["email_marketing"]["changed_at"] == (
        "2026-11-29T12:00:00Z"
    )
    link = client.post(
        "/v1/unsubscribe-links", json={"email": "li@example.com"}, headers=sender
    ).get_json()
    clock.advance(minutes=1)
    person = app.test_client(use_cookies=False)
    assert person.post(urlsplit(link["url"]).path, data=ONE_CLICK).status_code == 200
    looked_up = client.post(
        "/v1/subjects/lookup", json={"email": "li@example.com"}, headers=admin
    ).get_json()
    assert looked_up["consents"]["email_marketing"]["status"] == "opted_out"
    assert looked_up["decisions"]["email_marketing"] == {"sendable": False, "reason": "opted_out"}
