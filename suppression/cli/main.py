"""The operator's commands: `suppression ...` (names fixed by API.md)."""

from __future__ import annotations

import getpass
import io
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import click
from sqlalchemy import func, select

from suppression.cli.checks import REASON_ORDER, answer_file, write_check
from suppression.cli.context import load_settings, opened, session_scope
from suppression.cli.mailbox import mailbox
from suppression.cli.sync import sync
from suppression.config.settings import Settings
from suppression.domain.errors import InvalidInput, SuppressionError
from suppression.services.checks.csv_lists import CsvList
from suppression.services.consents.audit import verify_chain
from suppression.services.consents.recording import check_purpose
from suppression.services.imports.importer import import_csv
from suppression.services.rights.resealing import SEALED_COLUMNS, ResealReport, reseal_steps
from suppression.services.rights.retention import count_due, purge, retention_rules
from suppression.services.staff import accounts as staff_accounts
from suppression.services.staff.access_log import AccessChannel, Accessor, record_list_check
from suppression.services.staff.api_keys import (
    create_api_key,
    list_api_keys,
    live_admin_keys,
    revoke_api_key,
)
from suppression.store import engines as database
from suppression.store.models import ConsentEvent
from suppression.store.schema import utcnow


@click.group()
def main() -> None:
    """Marketing consent and opt-out suppression service."""


main.add_command(sync)  # suppression sync [--loop] [--full], sync retry, sync status
main.add_command(mailbox)  # suppression mailbox poll [--loop]


@main.group()
def db() -> None:
    """Schema migrations."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply every migration (the Procfile's release step)."""
    settings = load_settings()
    database.upgrade(settings.database_url, sealer=database.vault_for(settings).sealer)
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
            report = verify_chain(session, database.vault_for(settings), progress=bar.update)
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
def retention() -> None:
    """The storage limits of the privacy policy (2 and 7 years)."""


@retention.command("purge")
@click.option(
    "--dry-run", is_flag=True, help="Count and record what would be purged; change nothing"
)
def retention_purge(dry_run: bool) -> None:
    """Erase to the keyed index whoever is past a retention period. Run daily."""
    settings = load_settings()
    rules = retention_rules(settings.retention_non_customer_days, settings.retention_days)
    now = utcnow()
    with session_scope(settings) as session:
        due = count_due(session, rules, now)
        runs = []
        with click.progressbar(length=due, label="purging", file=sys.stderr) as bar:
            for step in purge(session, database.vault_for(settings), rules, now, dry_run):
                session.commit()  # each chunk on its own: a killed purge loses one at most
                if step.finished:
                    runs.append(step.run)
                else:
                    bar.update(step.erased)
    verb = "would erase" if dry_run else "erased"
    for run in runs:
        count = run.counts["due"] if dry_run else run.counts["erased"]
        click.echo(f"{run.rule}: {verb} {count} subject(s)")


@main.command("import")
@click.argument("file", type=click.File("rb"))
def import_file(file: BinaryIO) -> None:
    """Import a suppression list (CSV, plain `email` or `email_sha256`)."""
    settings = load_settings()
    with session_scope(settings) as session:
        size = os.fstat(file.fileno()).st_size if file.seekable() else 0
        counted = _CountingReader(file)
        with click.progressbar(length=size, label="importing", file=sys.stderr) as bar:
            counted.on_read = bar.update
            steps = import_csv(
                session,
                database.vault_for(settings),
                # Buffered as open() buffers a raw file: a byte stream (IO[bytes]).
                io.BufferedReader(counted),
                settings.purposes,
                f"cli:{getpass.getuser()}",
                utcnow(),
            )
            for step in steps:
                session.commit()  # each chunk: a killed import keeps what it wrote
                if step.finished:
                    run, report = step.run, step.report
    click.echo(
        f"import {run.id}: {report.imported} imported, {report.rejected_total} rejected "
        f"of {report.rows} rows"
    )
    for line, error in report.rejected:
        click.echo(f"  line {line}: {error}")
    if report.rejected_total > len(report.rejected):
        click.echo(f"  ... and {report.rejected_total - len(report.rejected)} more")


@main.command("check")
@click.argument("file", type=click.File("rb"))
@click.option("--purpose", default="email_marketing", show_default=True)
@click.option(
    "--only",
    type=click.Choice(["sendable", "suppressed", "all"]),
    default="all",
    show_default=True,
    help="sendable: just the column email (the cleaned list)",
)
@click.option(
    "-o",
    "--output",
    default="-",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Where the answer goes  [default: standard output]",
)
def check_list(file: BinaryIO, purpose: str, only: str, output: str) -> None:
    """Check a send list (CSV, header `email`, optionally `country`; `-` reads standard
    input) as POST /v1/checks.csv does: `email,sendable,reason` in the file's order."""
    settings = load_settings()
    try:
        purpose = check_purpose(purpose, settings.purposes, allow_all=False)
    except InvalidInput as error:
        raise _explained(error) from error
    with opened(settings) as runtime:
        size = _size_of(file)
        counted = _CountingReader(file)
        listed = CsvList(io.BufferedReader(counted))
        with (
            answer_file(output) as out,
            click.progressbar(length=size, label="checking", file=sys.stderr) as bar,
        ):
            counted.on_read = bar.update
            try:
                tally = write_check(runtime, listed, purpose, only, out)
            except SuppressionError as error:
                raise click.ClickException(_with_lines(error)) from error
        with runtime.sessions() as session:
            accessor = Accessor(f"cli:{getpass.getuser()}", AccessChannel.CLI)
            record_list_check(session, accessor, purpose, tally.total, runtime.clock())
            session.commit()
    click.echo(
        f"{tally.total} rows: {tally.sendable} sendable, {tally.suppressed} suppressed", err=True
    )
    for reason, count in sorted(tally.reasons.items(), key=lambda item: REASON_ORDER[item[0]]):
        click.echo(f"  {reason}: {count}", err=True)


def _size_of(file: BinaryIO) -> int:
    """A file's size for the progress bar; 0 (unknown) for a pipe."""
    try:
        return os.fstat(file.fileno()).st_size if file.seekable() else 0
    except (OSError, io.UnsupportedOperation):
        return 0


def _with_lines(error: SuppressionError) -> str:
    """The message, and the lines it is about (`line 7: unknown country code 'QQ'`)."""
    lines = error.errors.get("csv")
    if not isinstance(lines, dict):
        return error.message
    listed = [f"line {n}: {'; '.join(texts)}" for n, texts in lines.items() if n != "_total"]
    return "\n  ".join([error.message, *listed])


class _CountingReader(io.RawIOBase):
    """A raw byte stream that reports how much was read (for the progress bar)."""

    def __init__(self, inner: BinaryIO):
        self.inner = inner
        self.on_read: Callable[[int], None] = lambda _n: None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.inner.read(len(buffer))
        buffer[: len(data)] = data
        self.on_read(len(data))
        return len(data)


@main.group()
def keys() -> None:
    """API keys for machine clients."""


@keys.command("create")
@click.option("--role", required=True, type=click.Choice(["admin", "staff", "sender", "inbound"]))
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


@keys.command("reseal")
@click.option("--dry-run", is_flag=True, help="Count what would be re-sealed; change nothing")
def keys_reseal(dry_run: bool) -> None:
    """Seal every address, evidence and secret again with the newest sealing key, so
    that older ADDRESS_SEALING_KEYS entries can be removed afterwards."""
    settings = load_settings()
    vault = database.vault_for(settings)
    report = ResealReport()
    with session_scope(settings) as session:
        for _column in reseal_steps(session, vault, report, dry_run):
            session.commit()
    verb = "would re-seal" if dry_run else "re-sealed"
    for target in SEALED_COLUMNS:
        name = target.name
        click.echo(
            f"{name}: {verb} {report.resealed[name]}, already under key "
            f"{vault.sealer.current} {report.current[name]}, unreadable {report.unreadable[name]}"
        )
    still = sorted(report.old_keys_in_use)
    if still:
        click.echo(f"still sealed with key(s) {', '.join(map(str, still))}: keep them", err=True)
        if any(report.unreadable.values()):
            raise SystemExit(1)
    else:
        click.echo(f"nothing is sealed with a key other than {vault.sealer.current} any more")


@keys.command("list")
def keys_list() -> None:
    """Name, role, prefix and state of every key (never the secret)."""
    settings = load_settings()
    with session_scope(settings) as session:
        for key in list_api_keys(session):
            state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "live"
            click.echo(f"{key.name}\t{key.role}\t{key.key_prefix}…\t{state}")


@main.group()
def staff() -> None:
    """Accounts for the staff pages at /admin/."""


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


def _explained(error: SuppressionError) -> click.ClickException:
    details = " ".join(" ".join(map(str, texts)) for texts in error.errors.values())
    return click.ClickException(f"{error.message}: {details}" if details else error.message)


@staff.command("create")
@click.option("--role", required=True, type=click.Choice(["staff", "admin"]))
@click.option("--username", required=True, help="What the person signs in with")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
def staff_create(role: str, username: str, password_stdin: bool) -> None:
    """Create an account; the password is prompted for (or read from stdin)."""
    settings = load_settings()
    password = _read_password(password_stdin)
    with session_scope(settings) as session:
        try:
            user = staff_accounts.create_staff_user(session, username, role, password, utcnow())
        except InvalidInput as error:
            raise _explained(error) from error
    click.echo(
        f"created {user.role} account {user.username!r}; "
        f"sign in at {settings.public_base_url}/admin/"
    )


@staff.command("password")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input")
def staff_password(username: str, password_stdin: bool) -> None:
    """Set a new password (the account's sessions end; its sign-in throttle resets)."""
    settings = load_settings()
    password = _read_password(password_stdin)
    with session_scope(settings) as session:
        try:
            user = staff_accounts.set_password(session, username, password, utcnow())
        except InvalidInput as error:
            raise _explained(error) from error
    click.echo(f"new password set for {user.username!r}")


@staff.command("disable")
@click.argument("username")
def staff_disable(username: str) -> None:
    """Stop an account from signing in; its open sessions end at once."""
    settings = load_settings()
    with session_scope(settings) as session:
        user = staff_accounts.set_disabled(session, username, True, utcnow())
    click.echo(f"disabled {user.username!r}")


@staff.command("enable")
@click.argument("username")
def staff_enable(username: str) -> None:
    """Let a disabled account sign in again."""
    settings = load_settings()
    with session_scope(settings) as session:
        user = staff_accounts.set_disabled(session, username, False, utcnow())
    click.echo(f"enabled {user.username!r}")


@staff.command("list")
def staff_list() -> None:
    """Username, role and state of every account (never a password)."""
    settings = load_settings()
    with session_scope(settings) as session:
        for user in staff_accounts.list_staff_users(session):
            state = f"disabled {user.disabled_at:%Y-%m-%d}" if user.disabled_at else "active"
            click.echo(f"{user.username}\t{user.role}\t{state}")


def ensure_first_admin_key(settings: Settings) -> str | None:
    """A first admin key when no live one exists; its secret, or None."""
    with session_scope(settings) as session:
        if live_admin_keys(session):
            return None
        taken = {key.name for key in list_api_keys(session)}
        name = next(n for n in ("admin", *(f"admin-{i}" for i in range(2, 1000))) if n not in taken)
        _key, secret = create_api_key(session, name, "admin", utcnow())
        return secret


# gunicorn's settings: at the project root, beside migrations/ (see gunicorn.conf.py).
GUNICORN_CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", type=int, help="Worker processes  [default: WEB_CONCURRENCY, else 2]")
def serve(host: str, port: int, workers: int | None) -> None:
    """Migrate, make sure an admin key exists, and run gunicorn (gunicorn.conf.py)."""
    settings = load_settings()
    database.upgrade(settings.database_url, sealer=database.vault_for(settings).sealer)
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
    command = [sys.executable, "-m", "gunicorn", "--config", str(GUNICORN_CONFIG)]
    command += ["--bind", f"{host}:{port}"]
    if workers is not None:
        command += ["--workers", str(workers)]
    os.execve(sys.executable, [*command, "suppression.app:create_app()"], env)
