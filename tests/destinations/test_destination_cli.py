"""`suppression sync`, `sync --full`, `sync retry`, `sync status`, and the loop."""

import threading
from datetime import timedelta

import pytest

from suppression.cli.main import main
from suppression.domain.policy import ALL_PURPOSES
from suppression.services.consents.events import EventContext
from suppression.services.consents.intake import accept_one_clicks, one_click_row
from suppression.store.models.destinations import OutboxRow
from suppression.store.schema import utcnow

# The commands open an engine of their own.
pytestmark = pytest.mark.committed


def test_sync_runs_one_pass_and_says_what_it_pushed(cli, worker, record, fakes):
    record("jane@example.com")
    result = cli.invoke(main, ["sync"])
    assert result.exit_code == 0, result.output
    assert "meta: claimed 1, suppressed 1" in result.output
    assert "jane" not in result.output
    assert fakes.keap.opted_out == {"jane@example.com": "Suppression service: opted_out"}


def test_sync_can_be_limited_to_one_destination(cli, worker, record, fakes):
    record("jane@example.com")
    result = cli.invoke(main, ["sync", "--destination", "keap"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("keap:")
    assert fakes.meta.request_count == 0


def test_sync_full_queues_and_pushes_what_was_never_confirmed(cli, record, fakes):
    record("old@example.com", purpose="ad_audiences")
    result = cli.invoke(main, ["sync", "--full", "--destination", "google"])
    assert result.exit_code == 0, result.output
    assert "reconciled 1" in result.output
    assert "accepted 1" in result.output  # Google processes it later
    assert fakes.google.batch_sizes == [1]


def test_sync_retry_requeues_parked_rows_and_status_raises_the_alarm(
    cli, worker, record, fakes, sessions
):
    record("jane@example.com", purpose="ad_audiences")
    with sessions() as session:
        session.query(OutboxRow).filter_by(destination="meta").update(
            {"failed_at": OutboxRow.created_at, "attempts": 8, "last_error": "Meta: HTTP 503"}
        )
        session.commit()
    status = cli.invoke(main, ["sync", "status"])
    assert status.exit_code == 1
    assert "meta\tenabled\tpending 0\tfailed 1" in status.output
    result = cli.invoke(main, ["sync", "retry", "--destination", "meta"])
    assert result.exit_code == 0, result.output
    assert "1 parked rows for meta queued again" in result.output
    assert cli.invoke(main, ["sync"]).exit_code == 0
    status = cli.invoke(main, ["sync", "status"])
    assert "meta\tenabled\tpending 0\tfailed 0" in status.output
    assert any(fakes.meta.removed.values())


def test_sync_refuses_a_destination_that_is_not_enabled(cli, monkeypatch):
    monkeypatch.setenv("LINKEDIN_ENABLED", "false")
    result = cli.invoke(main, ["sync", "--destination", "linkedin"])
    assert result.exit_code != 0
    assert "not enabled: linkedin" in result.output


def test_incomplete_destination_settings_stop_the_command_with_a_clear_message(cli, monkeypatch):
    monkeypatch.delenv("MICROSOFT_AUDIENCE_IDS")
    result = cli.invoke(main, ["sync"])
    assert result.exit_code != 0
    assert "MICROSOFT_AUDIENCE_IDS" in result.output


def test_the_loop_keeps_passing_until_told_to_stop(worker, record, fakes):
    record("jane@example.com")
    stop = threading.Event()
    passes = []

    def after(reports):
        passes.append(reports)
        if len(passes) == 2:
            stop.set()

    worker.run_forever(stop, on_pass=after)
    assert len(passes) == 2
    assert sum(r.suppressed for r in passes[0]) == 4
    assert sum(r.accepted for r in passes[0]) == 1  # Google: its status is read later
    assert sum(r.claimed for r in passes[1]) == 0


def test_the_procfile_worker_runs_the_sync_loop():
    from pathlib import Path

    procfile = Path(__file__).resolve().parents[2] / "Procfile"
    assert "worker: suppression sync --loop" in procfile.read_text().splitlines()


def test_sync_status_shows_a_destination_warning(cli, destination_env, monkeypatch):
    monkeypatch.setenv("LINKEDIN_VERSION", "202206")  # years past LinkedIn's support window
    result = cli.invoke(main, ["sync", "status"])
    (line,) = [line for line in result.output.splitlines() if line.startswith("linkedin")]
    assert "warning: LINKEDIN_VERSION 202206 is" in line


def test_sync_status_shows_the_one_click_backlog_and_alarms_when_nobody_folds_it(
    cli, app, sessions, vault
):
    settings = app.extensions["suppression"].settings

    def click_at(address, when):
        ctx = EventContext("recipient", "one_click", occurred_at=when, recorded_at=when)
        with sessions() as session:
            row = one_click_row(vault, settings.policy, address, ALL_PURPOSES, ctx)
            accept_one_clicks(session, [row])
            session.commit()

    click_at("fresh@example.com", utcnow() - timedelta(minutes=1))
    status = cli.invoke(main, ["sync", "status"])
    assert status.exit_code == 0, status.output
    [line] = [x for x in status.output.splitlines() if x.startswith("one-click intake")]
    assert line.startswith("one-click intake\twaiting 1\toldest ")
    assert "overdue" not in line

    click_at("stale@example.com", utcnow() - timedelta(hours=25))  # SYNC_DEADLINE_HOURS 24
    status = cli.invoke(main, ["sync", "status"])
    assert status.exit_code == 1
    assert "one-click intake\twaiting 2" in status.output
    assert "overdue: is the worker running?" in status.output
    assert "stale" not in status.output
    assert "fresh" not in status.output

    assert cli.invoke(main, ["sync"]).exit_code == 0  # a pass folds them
    status = cli.invoke(main, ["sync", "status"])
    assert status.exit_code == 0, status.output
    assert "one-click intake" not in status.output
