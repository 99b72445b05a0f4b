"""Fixtures shared by every test that needs a database or the app.

The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is
set (e.g. postgresql://postgres@127.0.0.1:5432/test). The schema is built once
per session by the real migrations; each test starts from empty tables.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from log_guard import AddressLogGuard
from seeding import api_key
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from suppression import create_app
from suppression.app import current
from suppression.config.environment import normalise_database_url, policy_from_env
from suppression.config.settings import Keys, Settings
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault
from suppression.store import engines as database
from suppression.store.schema import Base

TEST_KEYS = Keys(
    secret_key="test-secret-key-that-is-long-enough-for-flask",
    index_key=b"i" * 32,
    sealing_keys={1: b"s" * 32},
    sealing_key_current=1,
    token_keys={1: b"t" * 32},
)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime):
        self.current = start

    def __call__(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> datetime:
        self.current += timedelta(**delta)
        return self.current


@pytest.fixture(scope="session", autouse=True)
def no_address_in_logs() -> Iterator[AddressLogGuard]:
    """Every record the service (and a test HTTP server) logs during the whole
    suite is kept by the guard; one holding an email address, a link token or an
    API key fails the run."""
    guard = AddressLogGuard()
    root = logging.getLogger()
    root.addHandler(guard)
    yield guard
    root.removeHandler(guard)
    if guard.leaks:
        pytest.fail(
            "email addresses, link tokens or API keys were logged:\n" + guard.report(),
            pytrace=False,
        )


def _database_url(tmp_root: Path) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return normalise_database_url(url)
    return f"sqlite:///{tmp_root / 'test.db'}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = _database_url(tmp_path_factory.mktemp("db"))
    engine = database.make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    database.upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = database.make_engine(database_url)
    yield engine
    engine.dispose()


def _empty_tables(engine: Engine) -> None:
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # A session leaked by an earlier test would make TRUNCATE wait forever.
            connection.execute(text("SET LOCAL lock_timeout = '20s'"))
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                connection.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 29, 12, 0, tzinfo=UTC))


@pytest.fixture
def make_settings(database_url: str, tmp_path: Path):
    def build(**environ: str) -> Settings:
        return Settings(
            env="development",
            instance_path=tmp_path / "instance",
            database_url=database_url,
            keys=TEST_KEYS,
            policy=policy_from_env(environ),
        )

    return build


@pytest.fixture
def settings(make_settings) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings, clock: Clock, engine: Engine):
    _empty_tables(engine)
    application = create_app(settings, clock=clock)
    application.config["TESTING"] = True
    yield application
    dispose(application)


def dispose(application) -> None:
    """Stop an app's folding thread (the next test empties the tables it folds
    into) and its helpers, then close its pooled connections."""
    current.of(application).close()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def session(app) -> Iterator[Session]:
    session = app.extensions["suppression"].sessions()
    yield session
    session.close()


@pytest.fixture
def vault() -> AddressVault:
    return AddressVault(TEST_KEYS.index_key, AddressSealer(TEST_KEYS.sealing_keys, 1))


@pytest.fixture
def make_key(app):
    def create(role: str, name: str | None = None) -> dict[str, str]:
        return api_key(app, role, name)

    return create


@pytest.fixture
def sender(make_key) -> dict[str, str]:
    return make_key("sender")


@pytest.fixture
def staff(make_key) -> dict[str, str]:
    return make_key("staff")


@pytest.fixture
def admin(make_key) -> dict[str, str]:
    return make_key("admin")


@pytest.fixture
def dump(engine, database_url):
    """dump() -> bytes: everything the database holds, as an attacker with a copy
    of it would see it (the SQLite file and its WAL, or pg_dump's output)."""

    def take() -> bytes:
        if engine.dialect.name == "sqlite":
            # Read by another process: closing a file descriptor of the live file in
            # this one would drop every POSIX lock SQLite holds on it here, and the
            # check helpers (suppression/worker/check_helpers.py) read the file at the same
            # time; without those locks they may rebuild the WAL index under us.
            path = database_url.removeprefix("sqlite:///")
            files = [path + suffix for suffix in ("", "-wal") if os.path.exists(path + suffix)]
            return subprocess.run(["cat", *files], capture_output=True, check=True).stdout
        plain_url = database_url.replace("postgresql+psycopg://", "postgresql://")
        return subprocess.run(
            ["pg_dump", "--data-only", plain_url], capture_output=True, check=True
        ).stdout

    return take


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


@pytest.fixture
def key_env() -> dict[str, str]:
    """The environment under which a command (Settings.from_env) holds TEST_KEYS,
    so that it opens what the app under test sealed."""
    return {
        "SECRET_KEY": TEST_KEYS.secret_key,
        "ADDRESS_INDEX_KEY": _b64(TEST_KEYS.index_key),
        "ADDRESS_SEALING_KEYS": ",".join(
            f"{i}:{_b64(k)}" for i, k in TEST_KEYS.sealing_keys.items()
        ),
        "TOKEN_KEYS": ",".join(f"{i}:{_b64(k)}" for i, k in TEST_KEYS.token_keys.items()),
    }


def random_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


@pytest.fixture
def app_on_same_database(app, clock):
    """app_on_same_database(settings) -> another app on the test's database, its
    tables as they are (say, the same service restarted with rotated keys)."""
    made = []

    def build(other: Settings):
        application = create_app(other, clock=clock)
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield build
    for application in made:
        dispose(application)


@pytest.fixture
def sender_for(engine, clock):
    """A client of an app built with other settings, and a sender key for it."""
    made = []

    def build(settings: Settings):
        _empty_tables(engine)
        application = create_app(settings, clock=clock)
        made.append(application)
        return application.test_client(), api_key(application, "sender")

    yield build
    for application in made:
        dispose(application)
