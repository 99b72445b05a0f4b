from sqlalchemy import func, select

from suppression.store.models import Block, ConsentEvent, Subject


def check(client, headers, addresses):
    response = client.post("/v1/checks?detail=all", json={"addresses": addresses}, headers=headers)
    return [r["reason"] for r in response.get_json()["results"]]


def test_single_block_answers_201_with_the_state(client, sender):
    response = client.post(
        "/v1/blocks",
        json={"email": "a@example.com", "kind": "complaint", "source": "fbl"},
        headers=sender,
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["blocks"] == [
        {"kind": "complaint", "since": "2026-11-29T12:00:00Z", "source": "fbl"}
    ]
    assert body["decisions"]["email_marketing"] == {"sendable": False, "reason": "complained"}


def test_batch_records_every_event_and_answers_the_count(client, sender, session):
    events = [{"email": f"u{i}@example.com", "kind": "hard_bounce"} for i in range(50)]
    response = client.post("/v1/blocks", json={"events": events}, headers=sender)
    assert response.status_code == 200
    assert response.get_json() == {"recorded": 50}
    assert session.scalar(select(func.count()).select_from(Block)) == 50
    assert check(client, sender, ["u0@example.com", "u49@example.com"]) == ["bounced", "bounced"]


def test_a_bad_event_in_a_batch_stores_nothing_and_names_it(client, sender, session):
    events = [
        {"email": "good@example.com", "kind": "complaint"},
        {"email": "not-an-address", "kind": "complaint"},
        {"email": "other@example.com", "kind": "unsubscribe"},
    ]
    response = client.post("/v1/blocks", json={"events": events}, headers=sender)
    assert response.status_code == 422
    errors = response.get_json()["errors"]["json"]["events"]
    assert set(errors) == {"1", "2"}
    assert "email" in errors["1"]
    assert "kind" in errors["2"]
    assert session.scalar(select(func.count()).select_from(Subject)) == 0


def test_a_batch_over_ten_thousand_is_422(client, sender):
    events = [{"email": "a@example.com", "kind": "complaint"}] * 10_001
    response = client.post("/v1/blocks", json={"events": events}, headers=sender)
    assert response.status_code == 422
    assert "events" in response.get_json()["errors"]["json"]


def test_single_and_batch_forms_cannot_be_mixed(client, sender):
    body = {
        "email": "a@example.com",
        "kind": "complaint",
        "events": [{"email": "b@example.com", "kind": "complaint"}],
    }
    assert client.post("/v1/blocks", json=body, headers=sender).status_code == 422


def test_missing_kind_is_422(client, sender):
    response = client.post("/v1/blocks", json={"email": "a@example.com"}, headers=sender)
    assert response.status_code == 422
    assert "kind" in response.get_json()["errors"]["json"]


def test_an_older_lift_does_not_undo_a_newer_restriction(client, sender, staff, session):
    client.post(
        "/v1/blocks",
        json={
            "email": "r@example.com",
            "kind": "restriction",
            "occurred_at": "2026-10-01T00:00:00Z",
        },
        headers=sender,
    )
    client.post(
        "/v1/blocks",
        json={
            "email": "r@example.com",
            "kind": "lift_restriction",
            "occurred_at": "2026-09-01T00:00:00Z",
        },
        headers=staff,
    )
    assert check(client, sender, ["r@example.com"]) == ["restricted"]
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 2


def test_objection_covers_every_marketing_purpose(client, sender):
    client.post("/v1/blocks", json={"email": "o@example.com", "kind": "objection"}, headers=sender)
    for purpose in ("email_marketing", "ad_audiences"):
        response = client.post(
            "/v1/checks", json={"purpose": purpose, "addresses": ["o@example.com"]}, headers=sender
        )
        assert response.get_json()["suppressed"] == [
            {"email": "o@example.com", "reason": "restricted"}
        ]


def test_a_sender_may_not_lift_a_restriction(client, sender, staff, session):
    restricted = {"email": "r@example.com", "kind": "restriction", "source": "dsar"}
    assert client.post("/v1/blocks", json=restricted, headers=staff).status_code == 201
    events = session.scalar(select(func.count()).select_from(ConsentEvent))
    session.rollback()
    response = client.post(
        "/v1/blocks", json={"email": "r@example.com", "kind": "lift_restriction"}, headers=sender
    )
    assert response.status_code == 403
    body = response.get_json()
    assert (body["code"], body["status"]) == (403, "Forbidden")
    assert "staff or admin" in body["message"]
    assert "kind" in body["errors"]["json"]
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == events
    assert check(client, sender, ["r@example.com"]) == ["restricted"]


def test_a_sender_batch_holding_a_lift_is_refused_whole(client, sender, staff, session):
    restricted = {"email": "r@example.com", "kind": "restriction"}
    assert client.post("/v1/blocks", json=restricted, headers=staff).status_code == 201
    events = session.scalar(select(func.count()).select_from(ConsentEvent))
    session.rollback()
    batch = [
        {"email": "bounce@example.com", "kind": "hard_bounce"},
        {"email": "r@example.com", "kind": "lift_restriction"},
        {"email": "fbl@example.com", "kind": "complaint"},
    ]
    response = client.post("/v1/blocks", json={"events": batch}, headers=sender)
    assert response.status_code == 403
    body = response.get_json()
    assert body["code"] == 403
    assert set(body["errors"]["json"]["events"]) == {"1"}
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == events
    assert check(client, sender, ["r@example.com", "bounce@example.com", "fbl@example.com"]) == [
        "restricted",
        None,
        None,
    ]


def test_staff_and_admin_keys_lift_a_restriction_single_and_in_a_batch(
    client, sender, staff, admin
):
    for address in ("a@example.com", "b@example.com"):
        client.post("/v1/blocks", json={"email": address, "kind": "restriction"}, headers=sender)
    single = {"email": "a@example.com", "kind": "lift_restriction"}
    assert client.post("/v1/blocks", json=single, headers=staff).status_code == 201
    batch = {"events": [{"email": "b@example.com", "kind": "lift_restriction"}]}
    assert client.post("/v1/blocks", json=batch, headers=admin).status_code == 200
    assert check(client, sender, ["a@example.com", "b@example.com"]) == [None, None]


def test_a_batch_stores_what_the_same_events_sent_one_by_one_store(client, staff, session):
    """Repeats, a restriction lifted in the same batch, an older event after a
    newer one, country hints: the batch's one statement per table leaves what the
    single form's conditional writes leave, in order."""

    def events(prefix):
        return [
            {"email": f"{prefix}a@example.com", "kind": "restriction"},
            {"email": f"{prefix}a@example.com", "kind": "lift_restriction"},
            {"email": f"{prefix}b@example.com", "kind": "complaint", "country": "DE"},
            {
                "email": f"{prefix}b@example.com",
                "kind": "complaint",
                "source": "older",
                "occurred_at": "2026-01-01T00:00:00Z",
                "country": "FR",
            },
            {"email": f"{prefix}c@example.com", "kind": "hard_bounce", "country": "US"},
            {"email": f"{prefix}c@example.com", "kind": "objection"},
            {"email": f"{prefix}b@example.com", "kind": "hard_bounce", "source": "mta"},
        ]

    answer = client.post("/v1/blocks", json={"events": events("batch-")}, headers=staff)
    assert answer.status_code == 200, answer.get_json()
    for event in events("single-"):
        assert client.post("/v1/blocks", json=event, headers=staff).status_code == 201

    def stored(prefix):
        state = {}
        for letter in "abc":
            found = client.post(
                "/v1/subjects/lookup",
                json={"email": f"{prefix}{letter}@example.com"},
                headers=staff,
            ).get_json()
            state[letter] = (
                (found["country"], found["country_source"]),
                found["blocks"],
                found["decisions"],
                [(e["action"], e["source"]) for e in found["events"]],
            )
        return state

    batch, single = stored("batch-"), stored("single-")
    assert batch == single
    assert batch["a"][1] == []  # lifted
    assert batch["b"][0] == ("DE", "hint")  # the older hint does not replace it
    assert {b["kind"]: b["source"] for b in batch["b"][1]} == {
        "complaint": "api",
        "hard_bounce": "mta",
    }
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 14
