"""`decision_inputs`, the one row per subject that a check reads, is defined once,
by the view `decision_inputs_projection` (migration 0013), and kept by the
database's triggers, which copy the view's rows. After every kind of write the
service makes, it must equal the view and what the state tables say."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text

from suppression.domain.policy import ALL_PURPOSES
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.events import EventContext
from suppression.services.consents.intake import accept_one_clicks, fold_intake, one_click_row
from suppression.store.decision_inputs import PROJECTION
from suppression.store.models import Block, ConsentState, DecisionInputs, Subject


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


def _table_rows(session) -> list[tuple]:
    return [tuple(row) for row in session.execute(select(DecisionInputs.__table__))]


def _view_rows(session) -> list[tuple]:
    """What a rebuild from the view writes."""
    return [tuple(row) for row in session.execute(select(PROJECTION))]


def _by_subject(rows: list[tuple]) -> list[tuple]:
    return sorted(rows, key=lambda row: row[1])


def assert_kept(session) -> None:
    session.expire_all()
    expected = _expected(session)
    assert expected, "the workload stored nobody"
    assert _kept(session) == expected
    assert _by_subject(_table_rows(session)) == _by_subject(_view_rows(session))
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
    batch = [  # the batch form stands the triggers aside and copies the rows once
        {"email": "c@example.com", "kind": "objection", "country": "FR"},
        {"email": "i@example.com", "kind": "hard_bounce"},
        {"email": "i@example.com", "kind": "complaint", "country": "DE"},
    ]
    post(client, "/v1/blocks", {"events": batch}, sender, 200)
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


def test_a_fold_of_one_clicks_keeps_the_decision_inputs(client, sender, session, vault, clock):
    """The fold stands the triggers aside for its batch and copies the rows of the
    subjects it created or changed once, at the end (on PostgreSQL)."""
    consent = {"source": "form", "purpose": "email_marketing", "status": "opted_in"}
    post(client, "/v1/consents", {**consent, "email": "known@example.com"}, sender)
    post(client, "/v1/consents", {**consent, "email": "ads@example.com"}, sender)
    policy = client.application.extensions["suppression"].settings.policy

    def click(address: str, purpose: str) -> dict:
        ctx = EventContext("recipient", "one_click", clock(), clock(), evidence={})
        return one_click_row(vault, policy, address, purpose, ctx)

    rows = [
        click("known@example.com", "email_marketing"),  # moves an opt-in to opted out
        click("new@example.com", ALL_PURPOSES),  # a subject the fold creates
        click("new@example.com", ALL_PURPOSES),  # a repeat in the same batch
        click("ads@example.com", "ad_audiences"),  # a second purpose's state
    ]
    accept_one_clicks(session, rows)
    outcome = fold_intake(session, vault, policy, AlarmRule())
    session.commit()
    assert outcome.folded == 4
    assert sum(outcome.recorded.values()) == 3
    assert_kept(session)
    kept = {
        row.consents and tuple(sorted(row.consents))
        for row in session.scalars(select(DecisionInputs))
    }
    session.rollback()
    assert kept == {("email_marketing",), ("all",), ("ad_audiences", "email_marketing")}


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


def test_the_view_has_the_columns_of_the_table(engine):
    columns = [c["name"] for c in inspect(engine).get_columns(PROJECTION.name)]
    assert columns == [c.name for c in DecisionInputs.__table__.columns]
    assert PROJECTION.name not in inspect(engine).get_table_names()


ADDRESSES = [f"r{n}@example.{tld}" for n, tld in enumerate(("com", "de", "ca", "fr", "com", "us"))]
PURPOSES = ("email_marketing", "ad_audiences", "all")
BLOCK_KINDS = ("hard_bounce", "complaint", "restriction", "objection", "lift_restriction")


def _random_change(rng: random.Random, client, sender, admin, session) -> None:
    """One write, as the service makes them or straight to the state tables."""
    address = rng.choice(ADDRESSES)
    # Times around one another, so that late older events and ties happen too.
    when = (datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randrange(48))).isoformat()
    key = rng.choice((sender, admin))
    kind = rng.randrange(8)
    if kind <= 2:
        body = {
            "email": address,
            "purpose": rng.choice(PURPOSES),
            "status": rng.choice(("opted_in", "opted_out")),
            "source": "form",
            "occurred_at": when,
        }
        if rng.random() < 0.3:
            body["country"] = rng.choice(("US", "DE", "CA"))
        if body["status"] == "opted_in" and key is admin:
            body["evidence"] = {"note": "asked by phone"}
        response = client.post("/v1/consents", json=body, headers=key)
        assert response.status_code in (201, 409), response.get_json()
    elif kind == 3:
        block = rng.choice(BLOCK_KINDS)
        key = admin if block == "lift_restriction" else key
        body = {"email": address, "kind": block, "occurred_at": when}
        assert client.post("/v1/blocks", json=body, headers=key).status_code == 201
    elif kind == 4:
        body = {"email": address, "kind": rng.choice(("purchase", "inquiry")), "occurred_at": when}
        assert client.post("/v1/relationships", json=body, headers=sender).status_code == 201
    elif kind == 5:
        rows = "".join(
            f"{rng.choice(ADDRESSES)},{rng.choice(('opted_in', 'opted_out'))},"
            f"{rng.choice(PURPOSES)},{rng.choice(('', 'US', 'GB'))},{when}\n"
            for _ in range(rng.randrange(1, 6))
        )
        response = client.post(
            "/v1/imports",
            data="email,status,purpose,country,occurred_at\n" + rows,
            content_type="text/csv",
            headers=admin,
        )
        assert response.status_code == 200, response.get_json()
    elif kind == 6:
        # Straight to the tables: a state deleted or moved, a block switched.
        statement = rng.choice(
            (
                "DELETE FROM consent_states WHERE purpose = :purpose",
                "UPDATE consent_states SET status = 'opted_out' WHERE purpose = :purpose",
                "UPDATE blocks SET is_active = NOT is_active WHERE kind = :kind",
                "UPDATE subjects SET country = NULL, country_source = NULL",
            )
        )
        session.execute(
            text(statement), {"purpose": rng.choice(PURPOSES), "kind": rng.choice(BLOCK_KINDS)}
        )
        session.commit()
    elif rng.random() < 0.3:
        body = {"email": address, "reason": "request"}
        assert client.post("/v1/subjects/erase", json=body, headers=admin).status_code == 200


@pytest.mark.committed  # an erasure checkpoints SQLite's WAL on a connection of its own
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_changes_keep_the_table_equal_to_a_rebuild_from_the_view(
    seed, client, sender, admin, session
):
    rng = random.Random(seed)
    for _ in range(60):
        _random_change(rng, client, sender, admin, session)
        session.expire_all()
        assert _by_subject(_table_rows(session)) == _by_subject(_view_rows(session))
        session.rollback()
    assert_kept(session)
    # A rebuild from the view changes nothing.
    before = _by_subject(_table_rows(session))
    session.execute(text("DELETE FROM decision_inputs"))
    session.execute(DecisionInputs.__table__.insert().from_select(list(PROJECTION.c), PROJECTION))
    assert _by_subject(_table_rows(session)) == before
    session.rollback()
