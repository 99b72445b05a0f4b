"""Migrations on a database that already holds data: the chain is backfilled."""

from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.orm import Session

from suppression import database
from suppression.services.audit import verify_chain


def test_events_written_before_the_chain_are_linked_by_the_migration(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    from alembic import command

    command.upgrade(database.alembic_config(url), "0001")
    engine = database.make_engine(url)
    moment = datetime(2025, 3, 1, 12, 0, tzinfo=UTC).replace(tzinfo=None)  # SQLite: naive UTC
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO subjects (id, email_index, created_at) VALUES (1, :i, :t)"),
            {"i": b"x" * 32, "t": moment},
        )
        for n, action in enumerate(["opted_in", "opted_out", "hard_bounce"]):
            connection.execute(
                text(
                    "INSERT INTO consent_events (subject_id, action, source, actor, occurred_at,"
                    " recorded_at, ip, evidence, country) VALUES (1, :a, 'form', 'api_key:x',"
                    " :t, :t, '192.0.2.1', :e, 'US')"
                ),
                {"a": action, "t": moment.replace(minute=n), "e": f'{{"n": {n}}}'},
            )
    engine.dispose()
    database.upgrade(url)
    engine = database.make_engine(url)
    with Session(engine) as session:
        report = verify_chain(session)
        assert report.intact
        assert report.checked == 3
        last = session.execute(text("SELECT last_communication_at FROM subjects")).scalar()
        assert last.startswith("2025-03-01 12:01")
    engine.dispose()
