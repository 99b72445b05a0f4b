"""One Settings object, built once from the environment (or a dict in tests)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path

from suppression.config.production import MAKE_KEY, production_problems
from suppression.connectors.settings import (
    DestinationConfigError,
    DestinationSettings,
    destinations_from_env,
)
from suppression.domain.jurisdictions import (
    DEFAULT_REGIMES,
    Regime,
    RegimeTable,
    normalise_country,
    parse_regimes,
)
from suppression.domain.policy import DEFAULT_PURPOSES, EeaPolicy, PolicySettings

KEYS_FILE = "keys.json"
DEFAULT_MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # a CSV list of a million rows fits easily
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024  # a 1,000,000-address JSON list is ~30 MB


class ConfigError(RuntimeError):
    """The environment does not describe a service that may start."""


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
    # the sync worker, so the request commits one row and answers; or "inline",
    # in the request right after that commit. ONE_CLICK_FOLD sets it; settings
    # built in code (the tests, an embedding) fold as a configured process does.
    one_click_fold: str = "background"


ONE_CLICK_FOLDS = ("background", "inline")


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


def default_check_processes(database_url: str = "sqlite://") -> int:
    """One helper per CPU, at most four: each web worker starts its own, and slices
    of a 50,000-address chunk smaller than ~12,500 cost more than they save. On
    PostgreSQL one more: a helper waits while the server runs its query, and
    another keeps the CPUs busy meanwhile (benchmarks/checks.py: 2.13x -> 1.91x the
    floor on two CPUs). SQLite queries run inside the helper itself."""
    cpus = os.cpu_count() or 1
    waiting = 0 if database_url.startswith("sqlite") else 1
    return max(1, min(cpus + waiting, 4))


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
    check_chunk_size: int = 50_000
    # Helper processes that decide large check lists (suppression/worker/check_helpers.py); 0: none.
    check_processes: int = 0
    check_parallel_min: int = 10_000  # smaller chunks are decided in the web worker itself
    public_base_url: str = "http://127.0.0.1:8000"
    unsubscribe_mailbox: str | None = None
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
    session_cookie_secure: bool = False
    staff_session_hours: int = 8
    # Destinations (Keap, Meta, Google, LinkedIn, Microsoft) and the sync worker.
    destinations: DestinationSettings = field(default_factory=DestinationSettings)
    # The relay and sender of double opt-in confirmation mails.
    mail: MailSettings = field(default_factory=MailSettings)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def purposes(self) -> tuple[str, ...]:
        return self.policy.purposes

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        mode = env.get("SUPPRESSION_ENV", "development")
        if mode not in ("development", "production"):
            raise ConfigError("SUPPRESSION_ENV must be development or production")
        instance = Path(env.get("SUPPRESSION_INSTANCE", default_instance_path())).resolve()
        if mode == "production":
            missing = [
                name
                for name in (
                    "DATABASE_URL",
                    "SECRET_KEY",
                    "ADDRESS_INDEX_KEY",
                    "ADDRESS_SEALING_KEYS",
                    "TOKEN_KEYS",
                )
                if not env.get(name)
            ]
            if missing:
                raise ConfigError(
                    "production needs explicit settings; missing: " + ", ".join(missing)
                )
            keys = keys_from_env(env)
            database_url = env["DATABASE_URL"]
            weak = production_problems(
                env, keys, _flag(env.get("SESSION_COOKIE_SECURE"), default=True)
            )
            if weak:
                raise ConfigError("production refuses these settings:\n- " + "\n- ".join(weak))
        else:
            instance.mkdir(mode=0o700, parents=True, exist_ok=True)
            keys = keys_from_env(env) if env.get("ADDRESS_INDEX_KEY") else local_keys(instance)
            if not keys.token_keys:
                keys = replace(keys, token_keys=local_keys(instance).token_keys)
            database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'suppression.db'}"
        return cls(
            env=mode,
            instance_path=instance,
            database_url=normalise_database_url(database_url),
            keys=keys,
            policy=policy_from_env(env),
            max_content_length=int(env.get("MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH)),
            max_json_bytes=int(env.get("MAX_JSON_BYTES", DEFAULT_MAX_JSON_BYTES)),
            max_batch_events=int(env.get("MAX_BATCH_EVENTS", 10_000)),
            check_chunk_size=int(env.get("CHECK_CHUNK_SIZE", 50_000)),
            check_processes=int(
                env.get(
                    "CHECK_PROCESSES", default_check_processes(normalise_database_url(database_url))
                )
            ),
            check_parallel_min=int(env.get("CHECK_PARALLEL_MIN", 10_000)),
            public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            unsubscribe_mailbox=env.get("UNSUBSCRIBE_MAILBOX") or None,
            redis_url=env.get("REDIS_URL") or None,
            trusted_proxy_hops=trusted_proxy_hops_from_env(env),
            metrics_token=_metrics_token(env),
            retention_non_customer_days=int(env.get("RETENTION_NON_CUSTOMER_DAYS", 730)),
            retention_days=int(env.get("RETENTION_DAYS", 2557)),
            links=links_from_env(env, production=mode == "production"),
            session_cookie_secure=_flag(
                env.get("SESSION_COOKIE_SECURE"), default=mode == "production"
            ),
            staff_session_hours=int(env.get("STAFF_SESSION_HOURS", 8)),
            destinations=_destinations(env),
            mail=mail_from_env(env, production=mode == "production"),
        )


MAX_TRUSTED_PROXY_HOPS = 5


def trusted_proxy_hops_from_env(env: Mapping[str, str]) -> int:
    """TRUSTED_PROXY_HOPS: how many reverse proxies, each appending the address it
    was reached from to X-Forwarded-For, stand between clients and the service.
    Trusting more than there are lets a client choose its own address."""
    text = env.get("TRUSTED_PROXY_HOPS", "").strip() or "0"
    if not text.isascii() or not text.isdigit() or int(text) > MAX_TRUSTED_PROXY_HOPS:
        raise ConfigError(
            f"TRUSTED_PROXY_HOPS must be a whole number from 0 to {MAX_TRUSTED_PROXY_HOPS}: "
            "the number of reverse proxies in front of the service (0 when clients "
            "connect to it directly), got " + repr(env["TRUSTED_PROXY_HOPS"][:20])
        )
    return int(text)


def _metrics_token(env: Mapping[str, str]) -> str | None:
    token = env.get("METRICS_TOKEN") or None
    # It travels in a header: visible ASCII only, so that it is compared as sent.
    if token is not None and not all("!" <= c <= "~" for c in token):
        raise ConfigError("METRICS_TOKEN must be visible ASCII characters (no spaces)")
    return token


def _destinations(env: Mapping[str, str]) -> DestinationSettings:
    try:
        return destinations_from_env(env)
    except DestinationConfigError as exc:
        raise ConfigError(str(exc)) from exc


def _flag(value: str | None, default: bool) -> bool:
    if value is None or not value.strip():
        return default
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{value!r} is not a yes/no setting (true or false)")


def default_instance_path() -> Path:
    return Path.cwd() / "instance"


def normalise_database_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, not psycopg2."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def _decode_key(text: str, name: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise ConfigError(f"{name} is not base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"{name} must be 32 bytes (base64 of 32 random bytes)")
    return raw


def _key_ring(env: Mapping[str, str], name: str) -> dict[int, bytes]:
    """`id:base64,id:base64` → {id: key}."""
    ring: dict[int, bytes] = {}
    for part in filter(None, env.get(name, "").split(",")):
        key_id, sep, value = part.strip().partition(":")
        if not sep or not key_id.isdigit():
            raise ConfigError(f"{name} entries are id:base64")
        ring[int(key_id)] = _decode_key(value, name)
    return ring


def keys_from_env(env: Mapping[str, str]) -> Keys:
    """ADDRESS_SEALING_KEYS is `id:base64,id:base64`; the highest id seals new data.
    TOKEN_KEYS has the same form (ids 0..255); the highest id mints links."""
    sealing = _key_ring(env, "ADDRESS_SEALING_KEYS")
    tokens = _key_ring(env, "TOKEN_KEYS")
    if any(key_id > 255 for key_id in tokens):
        raise ConfigError("TOKEN_KEYS ids are 0..255 (one byte in each link)")
    if not sealing:
        raise ConfigError(
            "ADDRESS_SEALING_KEYS holds no key: set it to 1:<key>, a key made with " + MAKE_KEY
        )
    secret = env.get("SECRET_KEY", "")
    if len(secret) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    return Keys(
        secret_key=secret,
        index_key=_decode_key(env.get("ADDRESS_INDEX_KEY", ""), "ADDRESS_INDEX_KEY"),
        sealing_keys=sealing,
        sealing_key_current=max(sealing),
        token_keys=tokens,
    )


def _new_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode().rstrip("=")


def local_keys(instance: Path) -> Keys:
    """Keys for local use: generated on first run, kept in the instance folder (0600)."""
    path = instance / KEYS_FILE
    if not path.exists():
        document = {
            "SECRET_KEY": secrets.token_urlsafe(48),
            "ADDRESS_INDEX_KEY": _new_key(),
            "ADDRESS_SEALING_KEYS": f"1:{_new_key()}",
            "TOKEN_KEYS": f"1:{_new_key()}",
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
    document = json.loads(path.read_text())
    if not document.get("TOKEN_KEYS"):
        document = _add_local_key(path, "TOKEN_KEYS")
    return keys_from_env(document)


def _add_local_key(path: Path, name: str) -> dict[str, str]:
    """A key this version needs that an older instance's keys.json lacks: generated
    once under a lock (several workers may start at once), written atomically, 0600."""
    lock_fd = os.open(path.with_name(path.name + ".lock"), os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(lock_fd, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        document = json.loads(path.read_text())
        if not document.get(name):
            document[name] = f"1:{_new_key()}"
            temporary = path.with_name(path.name + ".new")
            temporary.unlink(missing_ok=True)
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
            os.replace(temporary, path)
    return document


_PURPOSE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _countries(text: str) -> frozenset[str]:
    return frozenset(normalise_country(c) for c in text.split(",") if c.strip())


def policy_from_env(env: Mapping[str, str]) -> PolicySettings:
    purposes = tuple(
        p.strip() for p in env.get("PURPOSES", ",".join(DEFAULT_PURPOSES)).split(",") if p.strip()
    )
    if not purposes or "all" in purposes:
        raise ConfigError("PURPOSES must name at least one purpose, and not 'all'")
    # Purposes travel in URLs, CSV headers and JSON paths (services/checks/decisions.py).
    unfit = [p for p in purposes if not _PURPOSE_NAME.fullmatch(p)]
    if unfit:
        raise ConfigError(
            f"PURPOSES: {', '.join(unfit)}: use letters, digits, '_' or '-' (at most 64)"
        )
    try:
        regimes = {**DEFAULT_REGIMES, **parse_regimes(env.get("REGIMES", ""))}
        table = RegimeTable(
            by_country=regimes,
            unlisted=Regime(env.get("REGIME_UNLISTED", "opt_out")),
            unknown=Regime(env.get("REGIME_UNKNOWN", "opt_out")),
        )
        return PolicySettings(
            purposes=purposes,
            regimes=table,
            eea_policy=EeaPolicy(env.get("EEA_POLICY", "exclude")),
            soft_opt_in_countries=_countries(env.get("SOFT_OPT_IN_COUNTRIES", "")),
            soft_opt_in_purchase=timedelta(days=int(env.get("SOFT_OPT_IN_PURCHASE_DAYS", 730))),
            soft_opt_in_inquiry=timedelta(days=int(env.get("SOFT_OPT_IN_INQUIRY_DAYS", 183))),
        )
    except ValueError as exc:
        raise ConfigError(f"policy settings: {exc}") from exc


MIN_LINK_DAYS = 60  # CASL: an unsubscribe link works for at least 60 days after sending


def links_from_env(env: Mapping[str, str], production: bool = False) -> LinkSettings:
    """UNSUBSCRIBE_LINK_DAYS, PUBLIC_RATE_LIMIT, ONE_CLICK_RATE_LIMIT,
    UNSUBSCRIBE_ALARM_THRESHOLD, UNSUBSCRIBE_ALARM_WINDOW_MINUTES, PREFERENCE_NOTICE_VERSION,
    ONE_CLICK_FOLD."""
    from limits import parse_many

    if production and not env.get("PUBLIC_BASE_URL", "").startswith("https://"):
        raise ConfigError(
            "PUBLIC_BASE_URL must be the https:// origin of the unsubscribe pages in production "
            "(RFC 8058 one-click needs HTTPS)"
        )
    defaults = LinkSettings()
    try:
        links = LinkSettings(
            validity_days=int(env.get("UNSUBSCRIBE_LINK_DAYS", defaults.validity_days)),
            page_rate_limit=env.get("PUBLIC_RATE_LIMIT", defaults.page_rate_limit),
            one_click_rate_limit=env.get("ONE_CLICK_RATE_LIMIT", defaults.one_click_rate_limit),
            alarm_threshold=int(env.get("UNSUBSCRIBE_ALARM_THRESHOLD", defaults.alarm_threshold)),
            alarm_window_minutes=int(
                env.get("UNSUBSCRIBE_ALARM_WINDOW_MINUTES", defaults.alarm_window_minutes)
            ),
            notice_version=env.get("PREFERENCE_NOTICE_VERSION", defaults.notice_version),
            one_click_fold=env.get("ONE_CLICK_FOLD", defaults.one_click_fold),
        )
        for limit in (links.page_rate_limit, links.one_click_rate_limit):
            parse_many(limit)
    except ValueError as exc:
        raise ConfigError(f"unsubscribe link settings: {exc}") from exc
    if links.validity_days < MIN_LINK_DAYS:
        raise ConfigError(f"UNSUBSCRIBE_LINK_DAYS must be at least {MIN_LINK_DAYS} (CASL)")
    if links.one_click_fold not in ONE_CLICK_FOLDS:
        raise ConfigError(f"ONE_CLICK_FOLD must be one of: {', '.join(ONE_CLICK_FOLDS)}")
    if links.alarm_threshold < 1 or links.alarm_window_minutes < 1:
        raise ConfigError("UNSUBSCRIBE_ALARM_THRESHOLD and _WINDOW_MINUTES must be positive")
    if not links.notice_version.strip() or len(links.notice_version) > 100:
        raise ConfigError("PREFERENCE_NOTICE_VERSION must be 1 to 100 characters")
    return links


MAX_CONFIRM_LINK_HOURS = 24 * 30


def mail_from_env(env: Mapping[str, str], production: bool = False) -> MailSettings:
    """SMTP_URL, MAIL_FROM, CONFIRM_LINK_HOURS, SMTP_TIMEOUT_SECONDS, SMTP_CA_FILE."""
    from email.utils import parseaddr

    from suppression.connectors.smtp import SmtpRelay

    smtp_url = env.get("SMTP_URL", "").strip() or None
    mail_from = env.get("MAIL_FROM", "").strip() or None
    try:
        mail = MailSettings(
            smtp_url=smtp_url,
            mail_from=mail_from,
            confirm_link_hours=int(env.get("CONFIRM_LINK_HOURS", 48)),
            smtp_timeout_seconds=float(env.get("SMTP_TIMEOUT_SECONDS", 10)),
            smtp_ca_file=env.get("SMTP_CA_FILE") or None,
        )
        relay = SmtpRelay.from_url(smtp_url) if smtp_url else None
    except ValueError as exc:
        raise ConfigError(f"mail settings: {exc}") from exc
    if not 1 <= mail.confirm_link_hours <= MAX_CONFIRM_LINK_HOURS:
        raise ConfigError(f"CONFIRM_LINK_HOURS must be 1 to {MAX_CONFIRM_LINK_HOURS}")
    if mail.smtp_timeout_seconds <= 0:
        raise ConfigError("SMTP_TIMEOUT_SECONDS must be positive")
    if relay is None:
        return mail
    if mail_from is None:
        raise ConfigError("SMTP_URL is set: MAIL_FROM must name the sender of confirmation mails")
    _name, address = parseaddr(mail_from)
    if "@" not in address or any(c in mail_from for c in "\r\n\x00"):
        raise ConfigError("MAIL_FROM must be an address (or 'Name <address>')")
    if production and relay.has_credentials and not relay.encrypted:
        raise ConfigError(
            "SMTP_URL sends credentials over plain SMTP: use smtp+starttls:// or smtps://"
        )
    return mail
