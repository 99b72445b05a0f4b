"""One Settings object, built once from the environment (or a dict in tests).

The dataclasses here hold every default; suppression/config/environment.py reads
the environment over them, and suppression/config/key_files.py holds the keys."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from suppression.config.errors import ConfigError
from suppression.config.feedback import FeedbackSettings
from suppression.config.mailbox import MailboxSettings
from suppression.connectors.settings import DestinationSettings
from suppression.domain.policy import PolicySettings

__all__ = [
    "ConfigError",
    "FeedbackSettings",
    "Keys",
    "LinkSettings",
    "MailSettings",
    "MailboxSettings",
    "Settings",
]

DEFAULT_MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # a CSV list of a million rows fits easily
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024  # a 1,000,000-address JSON list is ~30 MB


@dataclass(frozen=True)
class Keys:
    secret_key: str
    index_key: bytes
    sealing_keys: Mapping[int, bytes]
    sealing_key_current: int
    # Unsubscribe-link tokens (TOKEN_KEYS): the highest id mints, all open.
    token_keys: Mapping[int, bytes] = field(default_factory=dict)


@dataclass(frozen=True)
class LinkSettings:
    """Unsubscribe links and the public pages (see links_from_env)."""

    validity_days: int = 180
    page_rate_limit: str = "60 per minute"
    one_click_rate_limit: str = "600 per minute"
    alarm_threshold: int = 50
    alarm_window_minutes: int = 10
    notice_version: str = "preferences-1"
    # How accepted one-click unsubscribes are folded into the event chain
    # (services/consents/intake.py): "background", by a thread of each web process and by
    # the sync worker, so the request commits one row and answers; "worker", by the
    # sync worker only (the production setting, docs/operating.md: the web
    # processes spend no CPU on the chain); or "inline", in the request right after
    # that commit. Readers of one person fold that person's rows first in every
    # mode. ONE_CLICK_FOLD sets it; settings built in code (the tests, an
    # embedding) fold as a configured process does.
    one_click_fold: str = "background"


ONE_CLICK_FOLDS = ("background", "worker", "inline")


@dataclass(frozen=True)
class MailSettings:
    """Double opt-in confirmation mail (see mail_from_env). Without a relay the
    preference page cannot switch anything back on: it says how else to."""

    smtp_url: str | None = field(default=None, repr=False)  # may hold a password
    mail_from: str | None = None
    confirm_link_hours: int = 48
    smtp_timeout_seconds: float = 10.0
    smtp_ca_file: str | None = None

    @property
    def enabled(self) -> bool:
        return self.smtp_url is not None and self.mail_from is not None


def default_check_processes() -> int:
    """One helper per CPU, at most four: each web worker starts its own. On
    PostgreSQL too: a third helper on two CPUs, to run while another waits for the
    server, took more CPU than it saved and ~30 MB more (benchmarks/checks.py,
    1,000,000 addresses: server CPU 5.0-5.5 s with two, 5.7-6.0 s with three)."""
    return max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    database_url: str
    keys: Keys
    policy: PolicySettings = field(default_factory=PolicySettings)
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    max_json_bytes: int = DEFAULT_MAX_JSON_BYTES
    max_batch_events: int = 10_000
    # Addresses per set query and per helper hand-off: 25,000 keeps a 1,000,000-address
    # check under 300 MB (benchmarks/checks.py: 50,000 took ~40 MB more, no less CPU).
    check_chunk_size: int = 25_000
    # Helper processes that decide large check lists (suppression/worker/check_helpers.py);
    # 0: none. A configured process starts default_check_processes() unless told otherwise.
    check_processes: int = 0
    check_parallel_min: int = 10_000  # smaller chunks are decided in the web worker itself
    public_base_url: str = "http://127.0.0.1:8000"
    unsubscribe_mailbox: str | None = None
    # The mailto carries the token as a `+token` sub-address instead of in its subject.
    unsubscribe_mailbox_plus: bool = False
    # Where a person writes to get mail back when the preference page cannot switch it
    # on (a complaint, an objection, a restriction): people, not the unsubscribe poller.
    contact_mailbox: str | None = None
    redis_url: str | None = None
    # Reverse proxies in front of the service that append to X-Forwarded-For
    # (suppression/app/proxies.py); 0: the peer of the socket is the client.
    trusted_proxy_hops: int = 0
    # The bearer token /metrics requires (METRICS_TOKEN); None: /metrics is open.
    metrics_token: str | None = field(default=None, repr=False)
    # Retention (services/rights/retention.py): the policy's 2 and 7 years.
    retention_non_customer_days: int = 730
    retention_days: int = 2557
    links: LinkSettings = field(default_factory=LinkSettings)
    # Staff pages: the session cookie is Secure (HTTPS only) and lasts this long.
    # A configured process makes it Secure in production unless told otherwise.
    session_cookie_secure: bool = False
    staff_session_hours: int = 8
    # Destinations (Keap, Meta, Google, LinkedIn, Microsoft) and the sync worker.
    destinations: DestinationSettings = field(default_factory=DestinationSettings)
    # The relay and sender of double opt-in confirmation mails.
    mail: MailSettings = field(default_factory=MailSettings)
    # The sending platforms' feedback webhooks (config/feedback.py).
    feedback: FeedbackSettings = field(default_factory=FeedbackSettings)
    # The unsubscribe mailbox the poller reads (config/mailbox.py).
    mailbox: MailboxSettings = field(default_factory=MailboxSettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def purposes(self) -> tuple[str, ...]:
        return self.policy.purposes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The settings os.environ (or `environ`) describes; ConfigError if it
        describes none that may start."""
        # The reader builds this class, so it is imported when first used.
        from suppression.config.environment import settings_from_env

        return settings_from_env(os.environ if environ is None else environ)
