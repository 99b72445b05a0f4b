"""Migrations on a database that already holds data: the chain is backfilled
(0002) and stored evidence is sealed (0008), on the suite's kind of database."""

import json
import os
import subprocess
from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from suppression.cli.main import main
from suppression.services.consents.audit import verify_chain
from suppression.services.consents.evidence import open_evidence
from suppression.store import engines as database
from suppression.store.models import ConsentEvent

JANE = "jane.doe@example.com"
EVIDENCE = [
    {"n": 0, "reply": f"From: Jane <{JANE}> yes please", "nested": {"cc": [JANE, "é"]}},
    None,
    {"n": 2, "dsn": f"550 <{JANE}> no such user", "score": 0.5},
]


@pytest.fixture
def scratch_url(database_url, tmp_path):
    """An empty database of the suite's kind: a SQLite file, or on PostgreSQL a
    database of its own beside the suite's (dropped afterwards)."""
    if not database_url.startswith("postgresql"):
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    url = make_url(database_url)
    name = f"{url.database}_migrations"
    admin = database.make_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


def stored_bytes(url: str) -> bytes:
    """What a copy of the database holds: the SQLite file and its WAL, or pg_dump."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        files = [path + suffix for suffix in ("", "-wal") if os.path.exists(path + suffix)]
        return subprocess.run(["cat", *files], capture_output=True, check=True).stdout
    plain = url.replace("postgresql+psycopg://", "postgresql://")
    return subprocess.run(["pg_dump", plain], capture_output=True, check=True).stdout


def events_of_an_older_version(url: str) -> None:
    """Three events as version 0001 stored them (plain JSON evidence, no chain)."""
    command.upgrade(database.alembic_config(url), "0001")
    engine = database.make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    if sqlite:
        moment = moment.replace(tzinfo=None)  # SQLite: naive UTC
    as_json = ":e" if sqlite else "CAST(:e AS JSON)"
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO subjects (id, email_index, created_at) VALUES (1, :i, :t)"),
            {"i": b"x" * 32, "t": moment},
        )
        for n, action in enumerate(["opted_in", "opted_out", "hard_bounce"]):
            connection.execute(
                text(
                    "INSERT INTO consent_events (subject_id, action, source, actor, occurred_at,"
                    f" recorded_at, ip, evidence, country) VALUES (1, :a, 'form', 'api_key:x',"
                    f" :t, :t, '192.0.2.1', {as_json}, 'US')"
                ),
                {
                    "a": action,
                    "t": moment.replace(minute=n),
                    "e": None if EVIDENCE[n] is None else json.dumps(EVIDENCE[n]),
                },
            )
    engine.dispose()


def revision_of(url: str) -> str:
    engine = database.make_engine(url)
    with engine.connect() as connection:
        revision = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    engine.dispose()
    return revision


def test_events_written_before_the_chain_are_linked_by_the_migration(scratch_url, vault):
    events_of_an_older_version(scratch_url)
    database.upgrade(scratch_url, sealer=vault.sealer)
    engine = database.make_engine(scratch_url)
    with Session(engine) as session:
        report = verify_chain(session, vault)
        assert report.intact
        assert report.checked == 3
        last = session.execute(text("SELECT last_communication_at FROM subjects")).scalar()
        assert str(last).startswith("2025-03-01 12:01")
    engine.dispose()


def test_stored_evidence_is_sealed_by_the_migration_and_the_chain_still_verifies(
    scratch_url, vault
):
    events_of_an_older_version(scratch_url)
    command.upgrade(database.alembic_config(scratch_url), "0007")
    assert JANE.encode() in stored_bytes(scratch_url)  # the check below would see it
    database.upgrade(scratch_url, sealer=vault.sealer)
    engine = database.make_engine(scratch_url)
    with Session(engine) as session:
        events = session.scalars(select(ConsentEvent).order_by(ConsentEvent.chain_seq)).all()
        assert [open_evidence(vault, e.evidence_sealed).value for e in events] == EVIDENCE
        assert [e.evidence_sealed[:2] if e.evidence_sealed else None for e in events] == [
            b"\x00\x01",
            None,
            b"\x00\x01",
        ]  # sealed with the current key, the key id in front
        report = verify_chain(session, vault)
        assert (report.intact, report.checked) == (True, 3)
    engine.dispose()
    data = stored_bytes(scratch_url)
    assert JANE.encode() not in data
    assert b"no such user" not in data
    database.check(scratch_url)  # the models and the migrations agree


def test_without_keys_the_migration_refuses_to_leave_evidence_unsealed(scratch_url):
    events_of_an_older_version(scratch_url)
    command.upgrade(database.alembic_config(scratch_url), "0007")
    with pytest.raises(RuntimeError, match="needs the sealing keys"):
        database.upgrade(scratch_url)
    assert revision_of(scratch_url) == "0007"
    assert JANE.encode() in stored_bytes(scratch_url)  # untouched, not half-migrated


def test_an_empty_database_upgrades_without_keys(scratch_url):
    database.upgrade(scratch_url)
    head = ScriptDirectory.from_config(database.alembic_config(scratch_url)).get_current_head()
    assert revision_of(scratch_url) == head


def test_the_sealing_migration_is_not_undone(scratch_url):
    database.upgrade(scratch_url, "0008")
    with pytest.raises(RuntimeError, match="back in clear"):
        command.downgrade(database.alembic_config(scratch_url), "0007")
    assert revision_of(scratch_url) == "0008"


def test_db_upgrade_seals_stored_evidence_with_the_configured_keys(
    scratch_url, vault, key_env, monkeypatch, tmp_path
):
    events_of_an_older_version(scratch_url)
    command.upgrade(database.alembic_config(scratch_url), "0007")
    for name, value in {
        **key_env,
        "DATABASE_URL": scratch_url,
        "SUPPRESSION_INSTANCE": str(tmp_path),
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = database.make_engine(scratch_url)
    with Session(engine) as session:
        sealed = session.scalars(select(ConsentEvent.evidence_sealed).order_by(ConsentEvent.id))
        assert [open_evidence(vault, s).value for s in sealed] == EVIDENCE
    engine.dispose()
    assert CliRunner().invoke(main, ["audit", "verify"]).exit_code == 0


def _decision_rows(connection) -> list[tuple]:
    return connection.execute(
        text("SELECT email_index, subject_id, consents FROM decision_inputs ORDER BY subject_id")
    ).all()


def _without_rowid(connection) -> bool:
    definition = connection.execute(
        text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decision_inputs'")
    ).scalar_one()
    return definition.rstrip().endswith("WITHOUT ROWID")


def test_decision_inputs_keep_their_rows_and_triggers_across_0016(scratch_url):
    """0016 rebuilds SQLite's decision_inputs as WITHOUT ROWID: the rows stay, and
    the triggers that keep them still run afterwards, up and down."""
    config = database.alembic_config(scratch_url)
    command.upgrade(config, "0015")
    engine = database.make_engine(scratch_url)
    sqlite = engine.dialect.name == "sqlite"
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=None if sqlite else UTC)
    state = (
        "INSERT INTO consent_states (subject_id, purpose, status, changed_at, source, event_id)"
        " VALUES (:s, 'email_marketing', :status, :t, 'test', :s)"
    )
    with engine.begin() as connection:
        for subject in (1, 2):
            connection.execute(
                text("INSERT INTO subjects (id, email_index, created_at) VALUES (:s, :i, :t)"),
                {"s": subject, "i": bytes([subject]) * 32, "t": moment},
            )
            connection.execute(text(state), {"s": subject, "status": "opted_in", "t": moment})
        before = _decision_rows(connection)
        if sqlite:
            assert not _without_rowid(connection)
    assert len(before) == 2
    engine.dispose()

    command.upgrade(config, "0016")
    engine = database.make_engine(scratch_url)
    with engine.begin() as connection:
        assert _decision_rows(connection) == before
        if sqlite:
            assert _without_rowid(connection)
        connection.execute(
            text(
                "UPDATE consent_states SET status = 'opted_out' WHERE subject_id = 2"
                " AND purpose = 'email_marketing'"
            )
        )
        connection.execute(
            text("INSERT INTO subjects (id, email_index, created_at) VALUES (3, :i, :t)"),
            {"i": b"\x03" * 32, "t": moment},
        )
        after = _decision_rows(connection)
    engine.dispose()
    assert [row[1] for row in after] == [1, 2, 3]  # the insert trigger made row 3
    consents = after[1][2] if isinstance(after[1][2], dict) else json.loads(after[1][2])
    assert consents["email_marketing"][0] == "opted_out"  # the update trigger ran

    command.downgrade(config, "0015")
    engine = database.make_engine(scratch_url)
    with engine.begin() as connection:
        assert _decision_rows(connection) == after
        if sqlite:
            assert not _without_rowid(connection)
    engine.dispose()
