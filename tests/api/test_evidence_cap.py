"""Free evidence is capped at 16 KB of canonical JSON in every write that takes
it: beyond that a 422 names the field and nothing is stored."""

import json

import pytest
from sqlalchemy import func, select

from suppression.store.models import ConsentEvent, Subject

CAP = 16 * 1024
WRITES = {
    "consent": (
        "/v1/consents",
        {"email": "a@example.com", "purpose": "all", "status": "opted_out", "source": "form"},
    ),
    "block": ("/v1/blocks", {"email": "a@example.com", "kind": "hard_bounce"}),
    "relationship": ("/v1/relationships", {"email": "a@example.com", "kind": "purchase"}),
}


def evidence_of_size(size: int) -> dict:
    """An evidence object whose canonical JSON is exactly `size` bytes."""
    frame = len(json.dumps({"text": ""}, separators=(",", ":")).encode())
    return {"text": "é" * ((size - frame) // 2) + "x" * ((size - frame) % 2)}


def stored(session) -> tuple[int, int]:
    counts = (
        session.scalar(select(func.count()).select_from(Subject)),
        session.scalar(select(func.count()).select_from(ConsentEvent)),
    )
    session.rollback()
    return counts


@pytest.mark.parametrize("write", WRITES)
def test_evidence_over_16_kb_is_refused_naming_the_field(write, client, staff, session):
    path, body = WRITES[write]
    response = client.post(
        path, json={**body, "evidence": evidence_of_size(CAP + 1)}, headers=staff
    )
    assert response.status_code == 422
    assert "16384 bytes" in response.json["errors"]["json"]["evidence"][0]
    assert stored(session) == (0, 0)


@pytest.mark.parametrize("write", WRITES)
def test_evidence_of_exactly_16_kb_is_stored(write, client, staff, session):
    path, body = WRITES[write]
    response = client.post(path, json={**body, "evidence": evidence_of_size(CAP)}, headers=staff)
    assert response.status_code in (200, 201)
    assert stored(session) == (1, 1)


def test_one_oversized_evidence_refuses_the_whole_batch(client, staff, session):
    events = [
        {"email": "a@example.com", "kind": "hard_bounce", "evidence": {"dsn": "550"}},
        {"email": "b@example.com", "kind": "complaint", "evidence": evidence_of_size(CAP + 1)},
    ]
    response = client.post("/v1/blocks", json={"events": events}, headers=staff)
    assert response.status_code == 422
    assert "evidence" in response.json["errors"]["json"]["events"]["1"]
    assert stored(session) == (0, 0)


@pytest.mark.parametrize("depth", [900, 935, 990, 5000])
def test_deeply_nested_evidence_is_a_clear_4xx(depth, client, staff, session):
    path, body = WRITES["consent"]
    nested = '{"n":' * depth + "{}" + "}" * depth
    text = json.dumps(body)[:-1] + ', "evidence": ' + nested + "}"
    headers = {**staff, "Content-Type": "application/json"}
    response = client.post(path, data=text, headers=headers)
    assert response.status_code in (201, 400, 422)  # never a 500
    if response.status_code != 201:
        assert set(response.json) == {"code", "status", "message", "errors"}
        assert stored(session) == (0, 0)
