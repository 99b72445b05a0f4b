"""The tamper-evident event chain: intact after normal use, broken by any edit
made behind the service's back, and named at the first broken link."""

from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from suppression.cli.main import main
from suppression.services.consents.audit import verify_chain
from suppression.store.models import ConsentEvent

# The tampering runs on a connection of its own.
pytestmark = pytest.mark.committed


@pytest.fixture
def history(client, sender):
    for i in range(6):
        response = client.post(
            "/v1/consents",
            json={
                "email": f"p{i % 3}@example.com",
                "purpose": "all",
                "status": "opted_out",
                "source": "form",
                "evidence": {"n": i},
            },
            headers=sender,
        )
        assert response.status_code == 201
    client.post("/v1/blocks", json={"email": "p0@example.com", "kind": "complaint"}, headers=sender)


def seqs(session):
    return session.scalars(select(ConsentEvent.chain_seq).order_by(ConsentEvent.chain_seq)).all()


def tamper(engine, sql, **params):
    with engine.begin() as connection:
        connection.execute(text(sql), params)


def test_the_chain_of_normal_writes_verifies(history, session, vault):
    report = verify_chain(session, vault)
    assert report.intact
    assert report.checked == report.total == 7
    assert seqs(session) == list(range(1, 8))


def test_an_edited_action_is_named_at_its_link(history, session, engine, vault):
    tamper(engine, "UPDATE consent_events SET action = 'opted_in' WHERE chain_seq = 4")
    report = verify_chain(session, vault)
    assert report.first_break.seq == 4
    assert "edited" in report.first_break.problem
    assert report.checked == 3


def test_an_edited_time_is_caught(history, session, engine, vault):
    moment = datetime(2020, 1, 1, tzinfo=UTC)
    if engine.dialect.name == "sqlite":
        moment = moment.replace(tzinfo=None)  # SQLite keeps naive UTC
    tamper(engine, "UPDATE consent_events SET occurred_at = :at WHERE chain_seq = 2", at=moment)
    assert verify_chain(session, vault).first_break.seq == 2


def test_edited_evidence_is_caught(history, session, engine, vault):
    tamper(engine, "UPDATE consent_events SET ip = '10.9.9.9' WHERE chain_seq = 5")
    report = verify_chain(session, vault)
    assert report.first_break.seq == 5
    assert "personal fields" in report.first_break.problem


def test_a_deleted_event_is_caught(history, session, engine, vault):
    tamper(engine, "DELETE FROM consent_events WHERE chain_seq = 3")
    report = verify_chain(session, vault)
    assert report.first_break.seq == 4
    assert "missing" in report.first_break.problem


def test_reordered_events_are_caught(history, session, engine, vault):
    tamper(engine, "UPDATE consent_events SET chain_seq = -1 WHERE chain_seq = 2")
    tamper(engine, "UPDATE consent_events SET chain_seq = 2 WHERE chain_seq = 3")
    tamper(engine, "UPDATE consent_events SET chain_seq = 3 WHERE chain_seq = -1")
    report = verify_chain(session, vault)
    assert report.first_break.seq == 2


def test_a_cut_tail_is_caught_by_the_head(history, session, engine, vault):
    tamper(engine, "DELETE FROM consent_events WHERE chain_seq = 7")
    report = verify_chain(session, vault)
    assert report.first_break is not None
    assert "end" in report.first_break.problem


def test_an_event_inserted_behind_the_services_back_is_caught(history, session, engine, vault):
    tamper(engine, "UPDATE consent_events SET chain_seq = chain_seq + 100 WHERE chain_seq >= 5")
    assert verify_chain(session, vault).first_break.seq == 105


def test_audit_verify_command_names_the_first_broken_link(
    history, engine, database_url, monkeypatch, tmp_path, key_env
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path))
    for name, value in key_env.items():  # the keys that sealed the history's evidence
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    intact = runner.invoke(main, ["audit", "verify"])
    assert intact.exit_code == 0
    assert "chain intact: 7 events verified" in intact.output
    tamper(engine, "UPDATE consent_events SET source = 'forged' WHERE chain_seq = 6")
    broken = runner.invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1
    assert "BROKEN at link 6" in broken.output


def test_sealed_evidence_moved_from_another_event_is_caught(history, session, engine, vault):
    tamper(
        engine,
        "UPDATE consent_events SET evidence_sealed ="
        " (SELECT evidence_sealed FROM consent_events WHERE chain_seq = 2) WHERE chain_seq = 5",
    )
    report = verify_chain(session, vault)
    assert report.first_break.seq == 5
    assert "personal fields" in report.first_break.problem


def test_a_changed_ciphertext_of_evidence_is_caught(history, session, engine, vault):
    sealed = session.scalar(select(ConsentEvent.evidence_sealed).where(ConsentEvent.chain_seq == 3))
    session.rollback()
    changed = sealed[:-1] + bytes([sealed[-1] ^ 1])
    tamper(engine, "UPDATE consent_events SET evidence_sealed = :s WHERE chain_seq = 3", s=changed)
    report = verify_chain(session, vault)
    assert report.first_break.seq == 3
    assert "opens with no held key" in report.first_break.problem
