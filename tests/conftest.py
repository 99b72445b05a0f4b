"""Fixtures shared by every test that needs a database or the app.

The suite runs on SQLite by default and on PostgreSQL when TEST_DATABASE_URL is
set (e.g. postgresql://postgres@127.0.0.1:5432/test). The schema is built once
per session by the real migrations; each test starts from empty tables.

A test's database work runs on one connection, inside a transaction rolled back
at its end: the app (`create_app(engine=..., sessions=...)`), the `session`
fixture and every session opened from the app's factory join it through a
savepoint each, so a commit in the code under test releases a savepoint and
nothing reaches the database. A test whose work has to be committed for real (a
second connection or process sees it: helper processes, servers, the CLI in a
subprocess, threads, PostgreSQL's one-click intake engine, a database dump,
locking) is marked `@pytest.mark.committed`: its tables are emptied before it
instead. A rolled-back test that opens a second connection, opens a session in
another thread or leaves rows behind fails, naming the mark.
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from flask import Flask
from log_guard import AddressLogGuard
from seeding import api_key
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import Pool

from suppression import create_app
from suppression.app import current
from suppression.config.environment import normalise_database_url, policy_from_env
from suppression.config.settings import Keys, Settings
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault
from suppression.store.engines import make_engine, upgrade
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


# Fixtures that hand the test's data to another connection, thread or process
# (the browser tests' live server, a dump read by `cat` or pg_dump, commands run
# by a CliRunner on engines of their own): their tests are `committed` without
# being marked.
COMMITTING_FIXTURES = frozenset({"live_server", "dump", "cli"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if COMMITTING_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.committed)


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
    engine = make_engine(url)
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP SCHEMA public CASCADE")
            connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
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


def _holds_rows(connection: Connection) -> bool:
    tables = " OR ".join(f"EXISTS (SELECT 1 FROM {name})" for name in Base.metadata.tables)
    return bool(connection.execute(text(f"SELECT CASE WHEN {tables} THEN 1 ELSE 0 END")).scalar())


# Identity columns start from 1 again, as after TRUNCATE ... RESTART IDENTITY
# (setval is not transactional: the rollback keeps it).
_RESTART_SEQUENCES = text(
    "SELECT count(setval(c.oid, 1, false)) FROM pg_class c"
    " JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind = 'S' AND n.nspname = current_schema()"
)


class Escaped(RuntimeError):
    """A rolled-back test's work escaped its connection."""


class TestDatabase:
    """The test's database: one connection in a transaction rolled back at the
    end, or (`committed`) the engine itself, its tables emptied before the test."""

    __test__ = False

    def __init__(self, engine: Engine, committed: bool):
        self.engine = engine
        self.committed = committed
        self.escapes: list[str] = []
        self.commits = 0  # by sessions that wrote: see _SavepointSession
        self.connection: Connection | None = None
        self.sessions: sessionmaker[Session] | None = None

    def begin(self) -> None:
        if self.committed:
            _empty_tables(self.engine)
            return
        connection = self.engine.connect()
        connection.begin()
        if _holds_rows(connection):  # an earlier committed test's rows
            connection.rollback()
            _empty_tables(self.engine)
            connection.begin()
        if self.engine.dialect.name == "postgresql":
            connection.execute(_RESTART_SEQUENCES)
        self.connection = connection
        self.sessions = _OneThreadSessions(connection, self)

    def end(self) -> None:
        if self.connection is None:
            return
        self.connection.rollback()
        left = _holds_rows(self.connection)
        self.connection.rollback()
        self.connection.close()
        if left:
            self.escapes.append("rows were committed outside the test's transaction")
            _empty_tables(self.engine)

    def escaped(self, what: str) -> Escaped:
        self.escapes.append(what)
        return Escaped(f"{what}: mark the test @pytest.mark.committed (tests/conftest.py)")

    def create_app(self, settings: Settings, clock: Clock) -> Flask:
        if self.committed:
            return create_app(settings, clock=clock)
        return create_app(settings, clock=clock, engine=self.engine, sessions=self.sessions)

    def empty(self) -> None:
        """Empty the tables now (within the test's transaction if it has one)."""
        if self.connection is None:
            _empty_tables(self.engine)
            return
        for table in reversed(Base.metadata.sorted_tables):
            self.connection.execute(table.delete())

    def dispose(self, application: Flask) -> None:
        """Stop an app's folding thread (the next test empties the tables it folds
        into), then close its pooled connections: its engine's, unless shared, and
        (PostgreSQL) the one-click intake's own."""
        state = current.of(application)
        state.folder.stop()
        if state.folder._thread is not None and not self.committed:
            # It may not have folded yet; it would have on another connection.
            self.escapes.append("a one-click started the folding thread")
        state.close()  # the shared engine stays open: the Runtime does not own it


class _SavepointSession(Session):
    """A session in a savepoint of the test's transaction. Sessions overlap (a
    request's reader opened before its writer, the `session` fixture around
    requests), so their savepoints do not always end in the order they began: one
    that wrote nothing ends by releasing its savepoint, never by rolling it back,
    which would undo what a later session committed inside it. One that wrote and
    rolls back over another's commit fails the test: no database would undo it."""

    wrote = False
    commits_at_begin = 0

    @property
    def database(self) -> TestDatabase:
        return self.info["database"]

    def _clean(self) -> bool:
        return not (self.wrote or self.new or self.dirty or self.deleted)

    def _undo(self) -> None:
        if self.in_transaction() and self.database.commits > self.commits_at_begin:
            self.database.escapes.append("a session rolled back over another session's commit")

    def commit(self) -> None:
        super().commit()
        if self.wrote:
            self.database.commits += 1
        self.wrote = False

    def _release(self) -> bool:
        """End a clean session's savepoint by releasing it: nothing of its own to
        undo. False if that fails (a statement failed in it, on PostgreSQL)."""
        if not (self.in_transaction() and self._clean()):
            return False
        try:
            super().commit()
        except DBAPIError:
            return False
        return True

    def rollback(self) -> None:
        if self._release():
            self.expire_all()
            return
        self._undo()
        super().rollback()

    def close(self) -> None:
        if not self._release():
            self._undo()
        super().close()


@event.listens_for(_SavepointSession, "after_begin")
def _savepoint_began(session: _SavepointSession, _transaction, _connection) -> None:
    session.wrote = False
    session.commits_at_begin = session.database.commits


@event.listens_for(_SavepointSession, "after_flush")
def _flushed(session: _SavepointSession, _context) -> None:
    session.wrote = True


@event.listens_for(_SavepointSession, "do_orm_execute")
def _executed(state) -> None:
    if not state.is_select:
        state.session.wrote = True


class _OneThreadSessions(sessionmaker[Session]):
    """Sessions on the test's connection, each in a savepoint of its transaction;
    only in the test's own thread (a connection is not shared between threads)."""

    def __init__(self, connection: Connection, database: TestDatabase):
        super().__init__(
            bind=connection,
            class_=_SavepointSession,
            expire_on_commit=False,
            join_transaction_mode="create_savepoint",
            info={"database": database},
        )
        self._thread = threading.get_ident()
        self._database = database

    def __call__(self, **local_kw) -> Session:
        if threading.get_ident() != self._thread:
            raise self._database.escaped("a session was opened in another thread")
        return super().__call__(**local_kw)


_rolled_back: list[TestDatabase] = []


@event.listens_for(Pool, "checkout")
def _second_connection(_dbapi_connection, _record, _proxy) -> None:
    if _rolled_back:
        raise _rolled_back[0].escaped("a second database connection was opened")


@pytest.fixture
def database(request: pytest.FixtureRequest, engine: Engine) -> Iterator[TestDatabase]:
    test_database = TestDatabase(engine, request.node.get_closest_marker("committed") is not None)
    test_database.begin()
    if test_database.connection is not None:
        _rolled_back.append(test_database)
    yield test_database
    _rolled_back.clear()
    test_database.end()
    if test_database.escapes:
        pytest.fail(
            "the test's work escaped its rolled-back transaction ("
            + "; ".join(sorted(set(test_database.escapes)))
            + "): mark it @pytest.mark.committed",
            pytrace=False,
        )


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
def app(settings: Settings, clock: Clock, database: TestDatabase):
    application = database.create_app(settings, clock)
    application.config["TESTING"] = True
    yield application
    database.dispose(application)


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
def app_on_same_database(app, clock, database: TestDatabase):
    """app_on_same_database(settings) -> another app on the test's database, its
    tables as they are (say, the same service restarted with rotated keys)."""
    made = []

    def build(other: Settings):
        application = database.create_app(other, clock)
        application.config["TESTING"] = True
        made.append(application)
        return application

    yield build
    for application in made:
        database.dispose(application)


@pytest.fixture
def sender_for(database: TestDatabase, clock):
    """A client of an app built with other settings, and a sender key for it."""
    made = []

    def build(settings: Settings):
        database.empty()
        application = database.create_app(settings, clock)
        made.append(application)
        return application.test_client(), api_key(application, "sender")

    yield build
    for application in made:
        database.dispose(application)
