"""`decision_inputs`, the one row per subject that a check reads, is kept by the
database's triggers (migration 0007). After every kind of write the service makes,
it must equal what the state tables say."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, text

from suppression.models import Block, ConsentState, DecisionInputs, Subject


def _when(value: str | datetime) -> float:
    """A consent time as PostgreSQL's JSON or SQLite's text (UTC, no zone) gives it."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _subject_columns(s) -> tuple:
    return (s.country, s.country_source, s.erased_at, s.last_purchase_at, s.last_inquiry_at)


def _expected(session) -> dict[bytes, tuple]:
    blocks: dict[int, list[str]] = {}
    for block in session.scalars(select(Block).where(Block.is_active)):
        blocks.setdefault(block.subject_id, []).append(block.kind)
    consents: dict[int, dict[str, tuple[str, float]]] = {}
    for state in session.scalars(select(ConsentState)):
        consents.setdefault(state.subject_id, {})[state.purpose] = (
            state.status,
            _when(state.changed_at),
        )
    return {
        s.email_index: (
            s.id,
            *_subject_columns(s),
            ",".join(sorted(blocks[s.id])) if s.id in blocks else None,
            consents.get(s.id, {}),
        )
        for s in session.scalars(select(Subject))
    }


def _kept(session) -> dict[bytes, tuple]:
    return {
        row.email_index: (
            row.subject_id,
            *_subject_columns(row),
            row.blocks,
            {p: (status, _when(at)) for p, (status, at) in (row.consents or {}).items()},
        )
        for row in session.scalars(select(DecisionInputs))
    }


def assert_kept(session) -> None:
    session.expire_all()
    expected = _expected(session)
    assert expected, "the workload stored nobody"
    assert _kept(session) == expected
    session.rollback()  # an open read would hold up erasure's WAL checkpoint on SQLite


def post(client, path, body, headers, status=201):
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == status, response.get_json()
    return response


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_every_write_keeps_the_decision_inputs(client, sender, admin, session):
    consent = {"source": "form", "purpose": "email_marketing"}
    post(
        client, "/v1/consents", {**consent, "email": "a@example.com", "status": "opted_in"}, sender
    )
    post(
        client,
        "/v1/consents",
        {**consent, "email": "a@example.com", "purpose": "all", "status": "opted_out"},
        sender,
    )
    # An older event after a newer one changes nothing; a newer one moves the state.
    old = {"occurred_at": "2020-01-01T00:00:00Z", "status": "opted_out"}
    post(client, "/v1/consents", {**consent, **old, "email": "a@example.com"}, sender)
    post(
        client,
        "/v1/consents",
        {**consent, "email": "b@example.de", "status": "opted_in", "country": "DE"},
        sender,
    )
    post(
        client, "/v1/consents", {**consent, "email": "b@example.de", "status": "opted_out"}, sender
    )
    post(client, "/v1/blocks", {"email": "c@example.com", "kind": "restriction"}, sender)
    post(client, "/v1/blocks", {"email": "c@example.com", "kind": "complaint"}, sender)
    post(client, "/v1/blocks", {"email": "c@example.com", "kind": "lift_restriction"}, admin)
    post(client, "/v1/blocks", {"email": "a@example.com", "kind": "hard_bounce"}, sender)
    post(client, "/v1/relationships", {"email": "d@example.ca", "kind": "purchase"}, sender)
    post(client, "/v1/relationships", {"email": "d@example.ca", "kind": "inquiry"}, sender)
    rows = (
        "email,status,purpose\ne@example.com,opted_out,all\nf@example.com,opted_in,ad_audiences\n"
    )
    response = client.post("/v1/imports", data=rows, content_type="text/csv", headers=admin)
    assert response.status_code == 200
    assert response.get_json()["imported"] == 2
    assert_kept(session)
    # Existing and new subjects in one import; country hints with opt-ins and opt-outs.
    rows = (
        "email,status,purpose,country\n"
        "a@example.com,opted_out,ad_audiences,US\n"
        "g@example.ca,opted_in,email_marketing,\n"
        "g@example.ca,opted_out,all,CA\n"
        "h@example.com,opted_in,email_marketing,GB\n"
        "h@example.com,opted_in,ad_audiences,\n"
    )
    response = client.post("/v1/imports", data=rows, content_type="text/csv", headers=admin)
    assert response.get_json()["imported"] == 5
    assert_kept(session)

    post(client, "/v1/subjects/erase", {"email": "b@example.de", "reason": "request"}, admin, 200)
    assert_kept(session)


def test_a_batch_of_blocks_and_a_deleted_state_are_kept(client, sender, session):
    body = {"events": [{"email": f"p{i}@example.com", "kind": "objection"} for i in range(5)]}
    assert client.post("/v1/blocks", json=body, headers=sender).status_code == 200
    post(
        client,
        "/v1/consents",
        {"email": "p0@example.com", "purpose": "all", "status": "opted_in", "source": "form"},
        sender,
    )
    assert_kept(session)
    # No service deletes a state row today; the trigger must still follow one.
    session.execute(text("DELETE FROM consent_states"))
    session.execute(text("UPDATE blocks SET is_active = false"))
    session.commit()
    assert_kept(session)


def test_a_deleted_subject_takes_its_row_with_it(session):
    # No service deletes a subject today (erasure keeps the keyed index).
    session.add(Subject(email_index=b"k" * 32, country="US", country_source=3))
    session.commit()
    assert [row.country for row in session.scalars(select(DecisionInputs))] == ["US"]
    session.execute(text("DELETE FROM subjects"))
    session.commit()
    assert session.scalars(select(DecisionInputs)).all() == []
