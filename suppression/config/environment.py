"""Reading the environment into Settings. Each default lives in its dataclass
(suppression/config/settings.py): a variable that is unset leaves it be."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from suppression.config.feedback import feedback_from_env
from suppression.config.key_files import keys_from_env, local_keys
from suppression.config.mailbox import mailbox_from_env
from suppression.config.production import production_problems
from suppression.config.settings import (
    ONE_CLICK_FOLDS,
    ConfigError,
    LinkSettings,
    MailSettings,
    Settings,
    default_check_processes,
)
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

T = TypeVar("T")

PRODUCTION_NEEDS = (
    "DATABASE_URL",
    "SECRET_KEY",
    "ADDRESS_INDEX_KEY",
    "ADDRESS_SEALING_KEYS",
    "TOKEN_KEYS",
)

# The whole-number Settings fields each variable sets.
WHOLE_NUMBERS = {
    "MAX_CONTENT_LENGTH": "max_content_length",
    "MAX_JSON_BYTES": "max_json_bytes",
    "MAX_BATCH_EVENTS": "max_batch_events",
    "CHECK_CHUNK_SIZE": "check_chunk_size",
    "CHECK_PARALLEL_MIN": "check_parallel_min",
    "RETENTION_NON_CUSTOMER_DAYS": "retention_non_customer_days",
    "RETENTION_DAYS": "retention_days",
    "STAFF_SESSION_HOURS": "staff_session_hours",
}


def _read(env: Mapping[str, str], name: str, parse: Callable[[str], T], default: T) -> T:
    """`name` parsed when the environment sets it; the dataclass default otherwise."""
    return parse(env[name]) if name in env else default


def settings_from_env(environ: Mapping[str, str]) -> Settings:
    env = dict(environ)
    mode = env.get("SUPPRESSION_ENV", "development")
    if mode not in ("development", "production"):
        raise ConfigError("SUPPRESSION_ENV must be development or production")
    production = mode == "production"
    instance = Path(env.get("SUPPRESSION_INSTANCE", default_instance_path())).resolve()
    if production:
        missing = [name for name in PRODUCTION_NEEDS if not env.get(name)]
        if missing:
            raise ConfigError("production needs explicit settings; missing: " + ", ".join(missing))
        keys = keys_from_env(env)
        database_url = env["DATABASE_URL"]
        weak = production_problems(env, keys, _flag(env.get("SESSION_COOKIE_SECURE"), default=True))
        if weak:
            raise ConfigError("production refuses these settings:\n- " + "\n- ".join(weak))
    else:
        instance.mkdir(mode=0o700, parents=True, exist_ok=True)
        keys = keys_from_env(env) if env.get("ADDRESS_INDEX_KEY") else local_keys(instance)
        if not keys.token_keys:
            keys = replace(keys, token_keys=local_keys(instance).token_keys)
        database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'suppression.db'}"
    database_url = normalise_database_url(database_url)
    policy = policy_from_env(env)
    chosen: dict[str, Any] = {
        field: int(env[name]) for name, field in WHOLE_NUMBERS.items() if name in env
    }
    if "PUBLIC_BASE_URL" in env:
        chosen["public_base_url"] = env["PUBLIC_BASE_URL"].rstrip("/")
    return Settings(
        env=mode,
        instance_path=instance,
        database_url=database_url,
        keys=keys,
        policy=policy,
        check_processes=int(env.get("CHECK_PROCESSES", default_check_processes())),
        unsubscribe_mailbox=env.get("UNSUBSCRIBE_MAILBOX") or None,
        unsubscribe_mailbox_plus=_flag(env.get("UNSUBSCRIBE_MAILBOX_PLUS"), default=False),
        contact_mailbox=env.get("CONTACT_MAILBOX") or None,
        redis_url=env.get("REDIS_URL") or None,
        trusted_proxy_hops=trusted_proxy_hops_from_env(env),
        metrics_token=_metrics_token(env),
        links=links_from_env(env, production=production),
        session_cookie_secure=_flag(env.get("SESSION_COOKIE_SECURE"), default=production),
        destinations=_destinations(env),
        mail=mail_from_env(env, production=production),
        feedback=feedback_from_env(env),
        mailbox=mailbox_from_env(env, production=production),
        **chosen,
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


_PURPOSE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _countries(text: str) -> frozenset[str]:
    return frozenset(normalise_country(c) for c in text.split(",") if c.strip())


def _days(text: str) -> timedelta:
    return timedelta(days=int(text))


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
    defaults = PolicySettings()
    try:
        regimes = {**DEFAULT_REGIMES, **parse_regimes(env.get("REGIMES", ""))}
        table = RegimeTable(
            by_country=regimes,
            unlisted=_read(env, "REGIME_UNLISTED", Regime, defaults.regimes.unlisted),
            unknown=_read(env, "REGIME_UNKNOWN", Regime, defaults.regimes.unknown),
        )
        return PolicySettings(
            purposes=purposes,
            regimes=table,
            eea_policy=_read(env, "EEA_POLICY", EeaPolicy, defaults.eea_policy),
            soft_opt_in_countries=_countries(env.get("SOFT_OPT_IN_COUNTRIES", "")),
            soft_opt_in_purchase=_read(
                env, "SOFT_OPT_IN_PURCHASE_DAYS", _days, defaults.soft_opt_in_purchase
            ),
            soft_opt_in_inquiry=_read(
                env, "SOFT_OPT_IN_INQUIRY_DAYS", _days, defaults.soft_opt_in_inquiry
            ),
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
            validity_days=_read(env, "UNSUBSCRIBE_LINK_DAYS", int, defaults.validity_days),
            page_rate_limit=env.get("PUBLIC_RATE_LIMIT", defaults.page_rate_limit),
            one_click_rate_limit=env.get("ONE_CLICK_RATE_LIMIT", defaults.one_click_rate_limit),
            alarm_threshold=_read(
                env, "UNSUBSCRIBE_ALARM_THRESHOLD", int, defaults.alarm_threshold
            ),
            alarm_window_minutes=_read(
                env, "UNSUBSCRIBE_ALARM_WINDOW_MINUTES", int, defaults.alarm_window_minutes
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
    defaults = MailSettings()
    try:
        mail = MailSettings(
            smtp_url=smtp_url,
            mail_from=mail_from,
            confirm_link_hours=_read(env, "CONFIRM_LINK_HOURS", int, defaults.confirm_link_hours),
            smtp_timeout_seconds=_read(
                env, "SMTP_TIMEOUT_SECONDS", float, defaults.smtp_timeout_seconds
            ),
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
