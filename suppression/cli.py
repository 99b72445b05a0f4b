"""The operator's commands: `suppression ...` (names fixed by API.md)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression import database
from suppression.config import ConfigError, Settings
from suppression.db import utcnow
from suppression.errors import SuppressionError
from suppression.models import ConsentEvent
from suppression.services.api_keys import (
    create_api_key,
    list_api_keys,
    live_admin_keys,
    revoke_api_key,
)
from suppression.services.audit import verify_chain


def load_settings() -> Settings:
    try:
        return Settings.from_env()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """One transaction per command: committed at the end, rolled back on error."""
    engine = database.make_engine(settings.database_url)
    session = database.make_session_factory(engine)()
    try:
        yield session
        session.commit()
    except SuppressionError as exc:
        session.rollback()
        raise click.ClickException(exc.message) from exc
    finally:
        session.close()
        engine.dispose()


@click.group()
def main() -> None:
    """Marketing consent and opt-out suppression service."""


@main.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (the Procfile's release step)."""
    settings = load_settings()
    database.upgrade(settings.database_url)
    click.echo("database is at the newest schema")


@db.command("check")
def db_check() -> None:
    """Fail when the models and the migrations disagree."""
    settings = load_settings()
    database.check(settings.database_url)
    click.echo("models and migrations agree")


@main.group()
def audit() -> None:
    """The tamper-evident event chain."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every link of the event chain; name the first broken one."""
    settings = load_settings()
    with session_scope(settings) as session:
        total = session.scalar(select(func.count()).select_from(ConsentEvent)) or 0
        with click.progressbar(length=total, label="verifying", file=sys.stderr) as bar:
            report = verify_chain(session, progress=bar.update)
    if report.intact:
        click.echo(f"chain intact: {report.checked} events verified")
        return
    problem = report.first_break
    assert problem is not None
    where = f"event id {problem.event_id}" if problem.event_id is not None else "the chain's end"
    click.echo(
        f"chain BROKEN at link {problem.seq} ({where}): {problem.problem}; "
        f"{report.checked} links before it verified",
        err=True,
    )
    raise SystemExit(1)


@main.group()
def keys() -> None:
    """API keys for machine clients."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "staff", "sender"]))
@click.option("--name", required=True, help="Who or what uses the key")
def keys_create(role: str, name: str) -> None:
    """Create a key; it is printed alone on the last line, this once only."""
    settings = load_settings()
    with session_scope(settings) as session:
        key, secret = create_api_key(session, name, role, utcnow())
    click.echo(f"created {key.role} key {key.name!r}; store it now, it is not shown again:")
    click.echo(secret)


@keys.command("revoke")
@click.argument("name")
def keys_revoke(name: str) -> None:
    """Revoke a key by name: it stops working at once."""
    settings = load_settings()
    with session_scope(settings) as session:
        revoke_api_key(session, name, utcnow())
    click.echo(f"revoked key {name!r}")


@keys.command("list")
def keys_list() -> None:
    """Name, role, prefix and state of every key (never the secret)."""
    settings = load_settings()
    with session_scope(settings) as session:
        for key in list_api_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
            click.echo(f"{key.name}\t{key.role}\t{key.key_prefix}…\t{state}")


def ensure_first_admin_key(settings: Settings) -> str | None:
    """A first admin key when no live one exists; its secret, or None."""
    with session_scope(settings) as session:
        if live_admin_keys(session):
            return None
        taken = {key.name for key in list_api_keys(session)}
        name = next(n for n in ("admin", *(f"admin-{i}" for i in range(2, 1000))) if n not in taken)
        _key, secret = create_api_key(session, name, "admin", utcnow())
        return secret


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int)
def serve(host: str, port: int, workers: int) -> None:
    """Migrate, make sure an admin key exists, and run gunicorn."""
    settings = load_settings()
    database.upgrade(settings.database_url)
    secret = ensure_first_admin_key(settings)
    if secret is not None:
        click.echo("No admin API key existed; created key 'admin' (shown this once):")
        click.echo(secret)
    metrics_dir = settings.instance_path / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env = dict(os.environ)
    env.update(
        SUPPRESSION_INSTANCE=str(settings.instance_path),
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
    )
    click.echo(
        f"serving on http://{host}:{port}/ (docs at /docs); instance {settings.instance_path}"
    )
    sys.stdout.flush()
    os.execve(
        sys.executable,
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"{host}:{port}",
            "--workers",
            str(workers),
            "--timeout",
            "300",
            "--access-logfile",
            "-",
            "suppression.app:create_app()",
        ],
        env,
    )
