"""Alembic environment: the URL comes from the caller (suppression db upgrade)."""

from alembic import context
from sqlalchemy import pool

from suppression.store import models  # noqa: F401  (registers the tables)
from suppression.store.engines import make_engine
from suppression.store.schema import Base

config = context.config


def run_migrations() -> None:
    url = config.get_main_option("sqlalchemy.url")
    connectable = config.attributes.get("connection")
    if connectable is not None:
        _run(connectable)
        return
    engine = make_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        _run(connection)
    engine.dispose()


def _run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Two releases migrating at once would otherwise race.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7342001)")
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run suppression db upgrade")
run_migrations()
