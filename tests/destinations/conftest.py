"""Destinations under test: the five fake platforms on loopback, settings that
point at them, a worker on the test clock, and a way to record changes."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from suppression.config.settings import Settings
from suppression.connectors.fakes import (
    FakeGoogle,
    FakeKeap,
    FakeLinkedIn,
    FakeMeta,
    FakeMicrosoft,
    environment_for,
)
from suppression.connectors.settings import destinations_from_env
from suppression.domain.addresses import canonicalise_strict
from suppression.domain.policy import ConsentStatus
from suppression.services.consents.recording import EventContext, record_block, record_consent
from suppression.store.models.destinations import OutboxRow
from suppression.worker.destination_sync import DestinationSync


@dataclass
class Fakes:
    keap: FakeKeap
    meta: FakeMeta
    google: FakeGoogle
    linkedin: FakeLinkedIn
    microsoft: FakeMicrosoft

    def all(self) -> list:
        return [self.keap, self.meta, self.google, self.linkedin, self.microsoft]

    def environment(self) -> dict[str, str]:
        return environment_for(**{fake.name: fake for fake in self.all()})


@pytest.fixture
def fakes() -> Iterator[Fakes]:
    started = Fakes(
        FakeKeap().start(),
        FakeMeta().start(),
        FakeGoogle().start(),
        FakeLinkedIn().start(),
        FakeMicrosoft().start(),
    )
    yield started
    for fake in started.all():
        fake.close()


@pytest.fixture
def destination_env(fakes: Fakes) -> dict[str, str]:
    """Edit this dict in a test (before `settings` is built) to change settings.
    The Keap pull is off here (it adds a GET to Keap's requests and faults);
    test_keap_pull.py turns it on. A failed call is recorded at once (no retry
    within its batch), as these tests observe failures;
    test_sync_retry_in_place.py turns the retries on."""
    return {
        **fakes.environment(),
        "SYNC_HTTP_TIMEOUT_SECONDS": "5",
        "KEAP_PULL_MINUTES": "0",
        "SYNC_IN_PLACE_RETRIES": "0",
    }


@pytest.fixture
def settings(make_settings, destination_env: dict[str, str]) -> Settings:
    return replace(make_settings(), destinations=destinations_from_env(destination_env))


@pytest.fixture
def sessions(app):
    return app.extensions["suppression"].sessions


@pytest.fixture
def make_worker(sessions, vault, settings, clock):
    made: list[DestinationSync] = []

    def build(name: str = "worker-1", seed: int = 1, **options) -> DestinationSync:
        worker = DestinationSync(
            sessions,
            vault,
            options.pop("settings", settings),
            clock=clock,
            rng=random.Random(seed),
            worker=name,
            **options,
        )
        made.append(worker)
        return worker

    yield build
    for worker in made:
        worker.close()


@pytest.fixture
def worker(make_worker) -> DestinationSync:
    """A registered worker: enabled destinations are in the registry, so changes
    from here on write outbox rows."""
    built = make_worker()
    built.register()
    return built


@pytest.fixture
def record(sessions, vault, clock) -> Callable[..., int]:
    """Record one change (committed) and return the subject id."""

    def change(email: str, purpose: str = "all", status: str = "opted_out", **kw) -> int:
        email = canonicalise_strict(email)
        ctx = EventContext(
            actor="test", source=kw.pop("source", "test"), occurred_at=clock(), recorded_at=clock()
        )
        with sessions() as session:
            if "block" in kw:
                subject = record_block(session, vault, email, kw.pop("block"), ctx, **kw)
            else:
                subject = record_consent(
                    session, vault, email, purpose, ConsentStatus(status), ctx, **kw
                )
            subject_id = subject.id
            session.commit()
        return subject_id

    return change


@pytest.fixture
def outbox_rows(sessions) -> Callable[..., int]:
    """How many outbox rows match, e.g. outbox_rows(destination="meta", failed_at=None)."""

    def count(**filters) -> int:
        query = select(func.count()).select_from(OutboxRow)
        for name, value in filters.items():
            column = getattr(OutboxRow, name)
            query = query.where(column.is_(None) if value is None else column == value)
        with sessions() as session:
            return int(session.scalar(query) or 0)

    return count


@pytest.fixture
def until_processed(sessions, settings, clock) -> Callable[..., list]:
    """Google processes a removal after accepting it: run passes of `worker`,
    SYNC_STATUS_SECONDS apart, until no accepted request awaits its final
    status (at most `passes`); answers every pass's reports."""

    def run(worker: DestinationSync, passes: int = 5) -> list:
        reports = []
        for _ in range(passes):
            with sessions() as session:
                awaiting = session.scalar(
                    select(func.count())
                    .select_from(OutboxRow)
                    .where(OutboxRow.request_id.is_not(None))
                )
            if not awaiting:
                return reports
            clock.advance(seconds=settings.destinations.sync.status_seconds)
            reports.append(worker.run_pass())
        raise AssertionError(f"requests still processing after {passes} passes")

    return run


@pytest.fixture
def cli(app, database_url, destination_env, tmp_path, monkeypatch) -> CliRunner:
    """The `suppression` command line against the test database and the fakes."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    # The CLI reads its keys from the environment like production does.
    monkeypatch.setenv("ADDRESS_INDEX_KEY", "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk")
    monkeypatch.setenv("ADDRESS_SEALING_KEYS", "1:c3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3M")
    monkeypatch.setenv("SECRET_KEY", "test-secret-key-that-is-long-enough-for-flask")
    for name, value in destination_env.items():
        monkeypatch.setenv(name, value)
    return CliRunner()
