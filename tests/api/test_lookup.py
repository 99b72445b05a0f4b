"""POST /v1/subjects/lookup and GET /v1/access-log: one address's whole story,
and the record of who looked."""

from functools import partial

from seeding import record
from sqlalchemy import func, select

from suppression.store.models import AccessLogEntry, Subject

consent = partial(record, source="signup_form")


def lookup(client, headers, email, **fields):
    return client.post("/v1/subjects/lookup", json={"email": email, **fields}, headers=headers)


def access_rows(session):
    return list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.id)))


def test_lookup_answers_state_decisions_and_every_event_newest_first(
    client, sender, make_key, clock
):
    staff = make_key("staff", "helpdesk")
    consent(
        client,
        sender,
        email="jane@example.com",
        status="opted_in",
        source="signup_form",
        occurred_at="2026-01-05T10:00:00Z",
        campaign="spring",
        evidence={"form": "newsletter-v2"},
    )
    consent(client, sender, email="jane@example.com", purpose="all", source="email_request")
    response = lookup(client, staff, " Jane@Example.COM ")
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == "jane@example.com"
    assert body["country"] is None
    assert body["country_source"] is None
    assert body["consents"]["all"]["status"] == "opted_out"
    assert body["consents"]["email_marketing"]["changed_at"] == "2026-01-05T10:00:00Z"
    assert body["decisions"]["email_marketing"] == {"sendable": False, "reason": "opted_out"}
    assert body["blocks"] == []
    assert [e["action"] for e in body["events"]] == ["opted_out", "opted_in"]
    first = body["events"][1]
    assert first["purpose"] == "email_marketing"
    assert first["source"] == "signup_form"
    assert first["actor"] == "api_key:sender-key"
    assert first["occurred_at"] == "2026-01-05T10:00:00Z"
    assert first["recorded_at"] == "2026-11-29T12:00:00Z"
    assert first["campaign"] == "spring"
    assert first["evidence"] == {"form": "newsletter-v2"}


def test_lookup_shows_blocks_and_the_jurisdiction_source(client, sender, staff):
    consent(client, sender, email="hans@firma.de")
    client.post(
        "/v1/blocks", json={"email": "hans@firma.de", "kind": "hard_bounce"}, headers=sender
    )
    body = lookup(client, staff, "hans@firma.de").get_json()
    assert body["country"] == "DE"
    assert body["country_source"] == "inferred"
    assert [b["kind"] for b in body["blocks"]] == ["hard_bounce"]
    assert body["decisions"]["ad_audiences"] == {"sendable": False, "reason": "bounced"}


def test_every_lookup_is_in_the_access_log_with_who_and_why(client, sender, make_key, session):
    staff = make_key("staff", "helpdesk")
    consent(client, sender, email="jane@example.com")
    assert lookup(client, staff, "jane@example.com", reason="ticket HD-7").status_code == 200
    rows = access_rows(session)
    assert len(rows) == 1
    assert rows[0].actor == "api_key:helpdesk"
    assert rows[0].channel == "api"
    assert rows[0].action == "lookup"
    assert rows[0].subject_id is not None
    assert rows[0].reason == "ticket HD-7"
    assert rows[0].occurred_at.isoformat() == "2026-11-29T12:00:00+00:00"


def test_unknown_address_is_404_and_the_search_is_still_logged_without_it(
    client, admin, session, dump
):
    response = lookup(client, admin, "nobody-here@example.com")
    assert response.status_code == 404
    assert response.get_json()["code"] == 404
    assert "No subject" in response.get_json()["message"]
    rows = access_rows(session)
    assert len(rows) == 1
    assert rows[0].subject_id is None
    assert rows[0].actor == "api_key:admin-key"
    assert b"nobody-here" not in dump()


def test_malformed_address_is_422_naming_the_field_and_logs_nothing(client, staff, session):
    response = lookup(client, staff, "not an address")
    assert response.status_code == 422
    assert "email" in response.get_json()["errors"]["json"]
    assert access_rows(session) == []


def test_lookup_needs_a_staff_or_admin_key(client, sender):
    consent(client, sender, email="jane@example.com")
    assert lookup(client, {}, "jane@example.com").status_code == 401
    assert lookup(client, sender, "jane@example.com").status_code == 403


def test_the_address_never_travels_in_the_url(client, staff):
    response = client.get("/v1/subjects/lookup?email=jane@example.com", headers=staff)
    assert response.status_code == 405


def test_admins_read_the_access_log_newest_first(client, sender, admin, make_key):
    staff = make_key("staff", "helpdesk")
    consent(client, sender, email="a@example.com")
    lookup(client, staff, "a@example.com", reason="first")
    lookup(client, staff, "b@example.com")
    response = client.get("/v1/access-log", headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert [e["reason"] for e in body["entries"]] == [None, "first"]
    assert body["entries"][0]["subject_id"] is None
    assert body["entries"][1]["actor"] == "api_key:helpdesk"
    assert body["entries"][1]["occurred_at"] == "2026-11-29T12:00:00Z"
    assert body["next_before"] is None


def test_the_access_log_pages_and_filters(client, sender, admin, make_key):
    desk = make_key("staff", "desk")
    other = make_key("staff", "other")
    for n in range(3):
        consent(client, sender, email=f"p{n}@example.com")
        lookup(client, desk, f"p{n}@example.com")
    lookup(client, other, "p0@example.com")
    first = client.get("/v1/access-log?limit=2", headers=admin).get_json()
    assert len(first["entries"]) == 2
    second = client.get(
        f"/v1/access-log?limit=2&before={first['next_before']}", headers=admin
    ).get_json()
    ids = [e["id"] for e in first["entries"] + second["entries"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 4
    assert second["next_before"] is None
    by_desk = client.get("/v1/access-log?actor=api_key:desk", headers=admin).get_json()
    assert len(by_desk["entries"]) == 3
    subject_id = first["entries"][0]["subject_id"]
    about = client.get(f"/v1/access-log?subject_id={subject_id}", headers=admin).get_json()
    assert {e["actor"] for e in about["entries"]} == {"api_key:desk", "api_key:other"}


def test_the_access_log_is_for_admins_only(client, staff, sender):
    assert client.get("/v1/access-log").status_code == 401
    assert client.get("/v1/access-log", headers=staff).status_code == 403
    assert client.get("/v1/access-log", headers=sender).status_code == 403


def test_a_bad_access_log_query_is_422_naming_the_field(client, admin):
    response = client.get("/v1/access-log?limit=0", headers=admin)
    assert response.status_code == 422
    assert "limit" in response.get_json()["errors"]["query"]


def test_lookup_and_access_log_are_in_the_openapi_document(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "post" in paths["/v1/subjects/lookup"]
    assert "get" in paths["/v1/access-log"]


def test_a_failed_lookup_stores_nothing_but_the_log_entry(client, staff, session):
    lookup(client, staff, "ghost@example.com")
    assert session.scalar(select(func.count()).select_from(Subject)) == 0
