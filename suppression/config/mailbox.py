"""The unsubscribe mailbox poller (`suppression mailbox poll`): where the mails that
clients send to the `List-Unsubscribe` mailto are read, and where each goes after.
Off until UNSUBSCRIBE_IMAP_URL is set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suppression.config.errors import ConfigError
from suppression.connectors.imap import ImapMailbox, check_folder

MIN_INTERVAL_SECONDS = 1.0
MAX_INTERVAL_SECONDS = 3600.0  # the law's clock runs from the mail: a pass at least hourly
MAX_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class MailboxSettings:
    imap_url: str | None = field(default=None, repr=False)  # holds the password
    # Where a message goes once its opt-out is committed, and where one that names
    # nobody goes (kept for a person to read, never deleted).
    processed_folder: str = "Processed"
    unmatched_folder: str = "Unmatched"
    interval_seconds: float = 60.0  # between passes of `--loop`
    timeout_seconds: float = 30.0  # per network operation
    ca_file: str | None = None  # PEM bundle the server's certificate must chain to

    @property
    def enabled(self) -> bool:
        return self.imap_url is not None

    def mailbox(self) -> ImapMailbox:
        """The mailbox the URL names; ConfigError while none is set."""
        if self.imap_url is None:
            raise ConfigError("UNSUBSCRIBE_IMAP_URL is not set: there is no mailbox to read")
        return ImapMailbox.from_url(self.imap_url, self.timeout_seconds, self.ca_file)


def mailbox_from_env(env: Mapping[str, str], production: bool = False) -> MailboxSettings:
    """UNSUBSCRIBE_IMAP_URL, UNSUBSCRIBE_IMAP_PROCESSED_FOLDER,
    UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER, UNSUBSCRIBE_IMAP_INTERVAL, UNSUBSCRIBE_IMAP_TIMEOUT,
    UNSUBSCRIBE_IMAP_CA_FILE."""
    defaults = MailboxSettings()
    url = env.get("UNSUBSCRIBE_IMAP_URL", "").strip() or None
    ca_file = env.get("UNSUBSCRIBE_IMAP_CA_FILE", "").strip() or None
    settings = MailboxSettings(
        imap_url=url,
        processed_folder=_folder(
            env, "UNSUBSCRIBE_IMAP_PROCESSED_FOLDER", defaults.processed_folder
        ),
        unmatched_folder=_folder(
            env, "UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER", defaults.unmatched_folder
        ),
        interval_seconds=_seconds(
            env,
            "UNSUBSCRIBE_IMAP_INTERVAL",
            defaults.interval_seconds,
            MIN_INTERVAL_SECONDS,
            MAX_INTERVAL_SECONDS,
        ),
        timeout_seconds=_seconds(
            env, "UNSUBSCRIBE_IMAP_TIMEOUT", defaults.timeout_seconds, 1.0, MAX_TIMEOUT_SECONDS
        ),
        ca_file=ca_file,
    )
    if ca_file is not None and not Path(ca_file).is_file():
        raise ConfigError(f"UNSUBSCRIBE_IMAP_CA_FILE names no file: {ca_file}")
    if settings.processed_folder == settings.unmatched_folder:
        raise ConfigError(
            "UNSUBSCRIBE_IMAP_PROCESSED_FOLDER and UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER must "
            "differ: a person reads the unmatched mails"
        )
    if url is None:
        return settings
    try:
        mailbox = settings.mailbox()
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if mailbox.folder in (settings.processed_folder, settings.unmatched_folder):
        raise ConfigError(
            f"UNSUBSCRIBE_IMAP_URL reads {mailbox.folder}: the processed and unmatched "
            "folders must be others"
        )
    if production and not mailbox.encrypted and not mailbox.on_loopback:
        raise ConfigError(
            "UNSUBSCRIBE_IMAP_URL sends the mailbox's password unencrypted: use imaps:// "
            "or imap+starttls:// (plain imap:// only to a server on loopback)"
        )
    return settings


def _folder(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name)
    if value is None or not value.strip():
        return default
    try:
        return check_folder(value, name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def _seconds(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # NaN fails too
        raise ConfigError(f"{name} must be a number of seconds from {low:g} to {high:g}")
    return value
