"""Engines, sessions and Alembic, for the app, the CLI and the tests alike."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import URL, Engine, create_engine, event, make_url
from sqlalchemy.orm import Session, sessionmaker

from suppression.config.settings import Settings
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)
READ_ONLY = "suppression_read_only"
MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
# A PostgreSQL server that does not answer at all (its host down, the network cut)
# must not hold a request for the minutes TCP takes to give up: connecting gives up
# after this long, and the request answers 503 (api/errors.py). A connect_timeout in
# DATABASE_URL wins.
CONNECT_TIMEOUT_SECONDS = 5


def make_engine(url: str, **options: Any) -> Engine:
    # A failing statement's error (raised, logged with its traceback) would print
    # every bound parameter: evidence, IPs, sealed addresses. It names the SQL only.
    options.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    options.setdefault("pool_pre_ping", True)
    options.setdefault("connect_args", postgresql_connect_args(url))
    return create_engine(url, **options)


def postgresql_connect_args(url: str | URL) -> dict[str, Any]:
    if "connect_timeout" in make_url(url).query:
        return {}
    return {"connect_timeout": CONNECT_TIMEOUT_SECONDS}


def one_click_engine(engine: Engine) -> Engine | None:
    """On PostgreSQL the intake INSERT runs on a small pool of its own, in
    autocommit: it is its own durable transaction, without the BEGIN and COMMIT
    round trips; and without the pre-ping round trip on every checkout (a
    connection found dead is replaced and the INSERT sent again: see
    worker/one_click_intake.py). SQLite keeps its BEGIN
    IMMEDIATE: the write lock is what orders its writers."""
    if engine.dialect.name != "postgresql":
        return None
    return create_engine(
        engine.url,
        connect_args=postgresql_connect_args(engine.url),
        isolation_level="AUTOCOMMIT",
        hide_parameters=True,  # as make_engine: no evidence in an error
        pool_pre_ping=False,
        pool_size=2,
        max_overflow=8,
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy issue BEGIN itself (below) instead of pysqlite's lazy one,
    # so that a write transaction takes the lock at its start.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    # Erased data must not linger in freed pages of the file.
    cursor.execute("PRAGMA secure_delete=ON")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # IMMEDIATE: writers queue on the lock up front rather than failing with
    # "database is locked" when two transactions upgrade from read to write.
    # Long reads (checks) ask for a deferred BEGIN so they never hold it.
    if connection.get_execution_options().get(READ_ONLY):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def vault_for(settings: Settings) -> AddressVault:
    keys = settings.keys
    return AddressVault(keys.index_key, AddressSealer(keys.sealing_keys, keys.sealing_key_current))


def read_only_session(factory: sessionmaker[Session]) -> Session:
    """A session for reads only: on SQLite it never takes the write lock."""
    engine = factory.kw["bind"]
    return factory(bind=engine.execution_options(**{READ_ONLY: True}))


def flush_erased_pages(engine: Engine) -> None:
    """After an erasure: SQLite keeps old page images in its WAL until a checkpoint,
    so write them back and truncate it. (PostgreSQL's dead row versions are
    reclaimed by autovacuum and never appear in a dump.)"""
    if engine.dialect.name != "sqlite":
        return
    raw = engine.raw_connection()  # outside any transaction: a checkpoint cannot run in one
    try:
        busy, _log, _done = raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            logger.warning(
                "WAL checkpoint after an erasure was blocked by a reader; "
                "it completes at the next checkpoint"
            )
    finally:
        raw.close()


# Alembic (and the Mako and Pygments it brings) is imported only by the commands
# that migrate: the web workers never need it, and it would cost each ~15 MB.


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head", sealer: AddressSealer | None = None) -> None:
    """Apply the migrations. A migration that seals data already stored (0008,
    evidence) needs the sealing keys: `sealer`; an empty database needs none."""
    from alembic import command

    config = alembic_config(url)
    if sealer is not None:
        config.attributes["evidence_sealer"] = sealer
    command.upgrade(config, revision)
    # What a migration cleared (plaintext evidence) must not linger in the WAL.
    engine = make_engine(url)
    try:
        flush_erased_pages(engine)
    finally:
        engine.dispose()


def check(url: str) -> None:
    """Raise when the models and the migrations disagree (alembic check)."""
    from alembic import command

    command.check(alembic_config(url))
