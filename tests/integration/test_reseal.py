"""Key rotation to the end: `suppression keys reseal` seals everything again with the
newest key, after which the old key can be dropped and nothing is lost."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from click.testing import CliRunner
from seeding import api_key
from sqlalchemy import select

from suppression.cli.main import main
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault
from suppression.services.consents.audit import verify_chain
from suppression.services.consents.intake import accept_one_clicks, one_click_row
from suppression.services.consents.recording import EventContext
from suppression.services.links.opt_in_requests import request_evidence, request_opt_in
from suppression.store.models import ConsentEvent, OneClickIntake, OptInRequest, Subject
from suppression.store.models.destinations import Destination

# The command opens an engine of its own.
pytestmark = pytest.mark.committed

NEW_KEY = b"n" * 32


def b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


@pytest.fixture
def stored(app, client, sender, session, vault, clock):
    """One of each sealed thing, all under key 1."""
    body = {
        "email": "jane@example.com",
        "purpose": "all",
        "status": "opted_out",
        "source": "email_request",
        "evidence": {"reply": "From: jane@example.com, please stop"},
    }
    assert client.post("/v1/consents", json=body, headers=sender).status_code == 201
    ctx = EventContext("recipient", "one_click", clock(), clock(), ip="192.0.2.9")
    policy = app.extensions["suppression"].settings.policy
    accept_one_clicks(session, [one_click_row(vault, policy, "pending@example.com", "all", ctx)])
    request_opt_in(session, vault, "li@example.ca", ["email_marketing"], {"ip": "x"}, clock())
    session.add(
        Destination(
            name="keap",
            kind="keap",
            enabled=False,
            targets="t",
            credential_sealed=vault.seal("refresh-token-1"),
            credential_seed="seed",
        )
    )
    session.commit()


def key_ids(session) -> set[int]:
    found = set()
    for column in (
        Subject.email_sealed,
        ConsentEvent.evidence_sealed,
        OneClickIntake.email_sealed,
        OptInRequest.email_sealed,
        OptInRequest.request_sealed,
        Destination.credential_sealed,
    ):
        found |= {
            AddressSealer.sealed_with(bytes(value))
            for value in session.scalars(select(column).where(column.is_not(None)))
        }
    session.rollback()
    return found


def run(monkeypatch, database_url, tmp_path, key_env, *args):
    env = {**key_env, "ADDRESS_SEALING_KEYS": f"1:{b64(b's' * 32)},2:{b64(NEW_KEY)}"}
    for name, value in {
        **env,
        "DATABASE_URL": database_url,
        "SUPPRESSION_INSTANCE": str(tmp_path / "cli"),
    }.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(main, ["keys", "reseal", *args])


@pytest.mark.usefixtures("stored")
def test_reseal_moves_everything_to_the_newest_key_and_the_old_one_can_go(
    app, session, clock, monkeypatch, database_url, tmp_path, key_env, app_on_same_database
):
    assert key_ids(session) == {1}
    dry = run(monkeypatch, database_url, tmp_path, key_env, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "subjects.email_sealed: would re-seal 1," in dry.output
    assert "one_click_intake.email_sealed: would re-seal 1," in dry.output
    assert key_ids(session) == {1}  # a dry run changes nothing
    result = run(monkeypatch, database_url, tmp_path, key_env)
    assert result.exit_code == 0, result.output
    assert "consent_events.evidence_sealed: re-sealed 1" in result.output
    assert "opt_in_requests.request_sealed: re-sealed 1" in result.output
    assert "destinations.credential_sealed: re-sealed 1" in result.output
    assert "nothing is sealed with a key other than 2 any more" in result.output
    assert key_ids(session) == {2}
    # Key 1 dropped: everything still opens, and the chain still verifies.
    only_new = AddressVault(b"i" * 32, AddressSealer({2: NEW_KEY}, 2))
    rotated = app.extensions["suppression"].settings
    rotated = replace(
        rotated, keys=replace(rotated.keys, sealing_keys={2: NEW_KEY}, sealing_key_current=2)
    )
    assert verify_chain(session, only_new).intact
    session.rollback()
    addresses = {
        only_new.open(sealed)
        for column in (Subject.email_sealed, OneClickIntake.email_sealed, OptInRequest.email_sealed)
        for sealed in session.scalars(select(column))
    }
    assert addresses == {"jane@example.com", "pending@example.com", "li@example.ca"}
    [request] = session.scalars(select(OptInRequest)).all()
    assert request_evidence(only_new, request) == {"ip": "x"}
    session.rollback()
    # The service restarted with key 1 dropped shows the evidence opened.
    restarted = app_on_same_database(rotated).test_client()
    admin_body = {"email": "jane@example.com", "reason": "after rotation"}
    admin = api_key(app, "admin", "rotation-admin")
    document = restarted.post("/v1/subjects/export", json=admin_body, headers=admin).get_json()
    [event] = [e for e in document["events"] if e["action"] == "opted_out"]
    assert event["evidence"] == {"reply": "From: jane@example.com, please stop"}
    # A second run finds nothing left to do.
    again = run(monkeypatch, database_url, tmp_path, key_env)
    assert "subjects.email_sealed: re-sealed 0, already under key 2 1," in again.output


def test_a_ciphertext_no_held_key_opens_is_reported_and_kept(
    app, session, vault, monkeypatch, database_url, tmp_path, key_env
):
    foreign = AddressSealer({7: b"7" * 32}, 7).seal("lost@example.com")
    session.add(Subject(email_index=vault.index("lost@example.com"), email_sealed=foreign))
    session.commit()
    result = run(monkeypatch, database_url, tmp_path, key_env)
    assert result.exit_code == 1
    assert "subjects.email_sealed: re-sealed 0, already under key 2 0, unreadable 1" in (
        result.output
    )
    assert "still sealed with key(s) 7: keep them" in result.output
    assert session.scalar(select(Subject.email_sealed)) == foreign
