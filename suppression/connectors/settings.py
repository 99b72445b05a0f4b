"""Destination settings from the environment, and connectors built from them.

A destination is configured when its credentials are set; `<NAME>_ENABLED=false`
switches a configured one off. Credentials are never part of a repr.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from suppression.connectors import google, keap, linkedin, meta, microsoft
from suppression.connectors.base import Connector
from suppression.connectors.oauth import BearerAuth, OAuthClient, TokenStore
from suppression.domain.destinations import Channel

DESTINATION_NAMES = ("keap", "meta", "google", "linkedin", "microsoft")
KINDS = {
    "keap": keap.KeapConnector.kind,
    "meta": meta.MetaConnector.kind,
    "google": google.GoogleConnector.kind,
    "linkedin": linkedin.LinkedInConnector.kind,
    "microsoft": microsoft.MicrosoftConnector.kind,
}
CHANNELS = {name: Channel.CRM if name == "keap" else Channel.ADS for name in DESTINATION_NAMES}

logger = logging.getLogger("suppression.destinations")


class DestinationConfigError(ValueError):
    """A destination's settings are incomplete or malformed."""


@dataclass(frozen=True)
class SyncSettings:
    max_attempts: int = 8  # then a row is parked as failed
    permanent_attempts: int = 3  # fewer when the platform calls the error permanent
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0
    rate_limit_seconds: float = 60.0  # a 429 that does not say how long
    lease_seconds: float = 300.0
    poll_seconds: float = 10.0
    deadline_hours: float = 24.0
    http_timeout_seconds: float = 30.0
    status_seconds: float = 300.0  # between status reads of a request processed later
    # A 429 or transient failure is retried this many times within its batch, after
    # its pause, before it is recorded as a failure (and the batch cycle paid again).
    in_place_retries: int = 3


@dataclass(frozen=True)
class DestinationSettings:
    keap: keap.KeapConfig | None = None
    meta: meta.MetaConfig | None = None
    google: google.GoogleConfig | None = None
    linkedin: linkedin.LinkedInConfig | None = None
    microsoft: microsoft.MicrosoftConfig | None = None
    disabled: frozenset[str] = frozenset()
    email_purpose: str = "email_marketing"
    ads_purpose: str = "ad_audiences"
    keap_pull_minutes: float = 15.0  # how often Keap's opt-outs are read back; 0: never
    sync: SyncSettings = field(default_factory=SyncSettings)
    # Settings that work today but need the operator soon, by destination name.
    warnings: Mapping[str, str] = field(default_factory=dict, hash=False)

    def config(self, name: str) -> Any:
        return getattr(self, name) if name in DESTINATION_NAMES else None

    def is_enabled(self, name: str) -> bool:
        return self.config(name) is not None and name not in self.disabled

    @property
    def enabled(self) -> tuple[str, ...]:
        return tuple(name for name in DESTINATION_NAMES if self.is_enabled(name))

    def purpose(self, name: str) -> str:
        return self.email_purpose if CHANNELS[name] == Channel.CRM else self.ads_purpose


TokenStoreFor = Callable[[str], TokenStore]


def log_warnings(settings: DestinationSettings) -> None:
    """Logged at start (the web app and the worker); also shown with the status."""
    for name, warning in settings.warnings.items():
        logger.warning("destination %s: %s", name, warning)


def build_connector(
    settings: DestinationSettings, name: str, token_store_for: TokenStoreFor | None = None
) -> Connector:
    config = settings.config(name)
    if config is None:
        raise DestinationConfigError(f"destination {name!r} is not configured")
    timeout = settings.sync.http_timeout_seconds
    store = token_store_for(name) if token_store_for else None
    if name == "keap":
        return keap.KeapConnector(config, timeout, token_store=store)
    if name == "meta":
        return meta.MetaConnector(config, timeout)
    if name == "google":
        return google.GoogleConnector(config, timeout, token_store=store)
    if name == "linkedin":
        return linkedin.LinkedInConnector(config, timeout, token_store=store)
    return microsoft.MicrosoftConnector(config, timeout, token_store=store)


# Reading the environment ----------------------------------------------------


class _Env:
    def __init__(self, env: Mapping[str, str], prefix: str):
        self.env = env
        self.prefix = prefix

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.env.get(f"{self.prefix}_{name}", "").strip()
        return value or default

    def ids(self, name: str) -> tuple[str, ...]:
        return tuple(p.strip() for p in (self.get(name) or "").split(",") if p.strip())

    def number(self, name: str, default: float | None, integer: bool = False) -> Any:
        raw = self.get(name)
        if raw is None:
            return default
        try:
            value = int(raw) if integer else float(raw)
        except ValueError:
            raise DestinationConfigError(f"{self.prefix}_{name} must be a number") from None
        if value < 0:
            raise DestinationConfigError(f"{self.prefix}_{name} must not be negative")
        return value

    def url(self, name: str, default: str) -> str:
        value = self.get(name, default) or default
        if not value.startswith(("https://", "http://")):
            raise DestinationConfigError(f"{self.prefix}_{name} must be an http(s) URL")
        return value.rstrip("/")

    def flag(self, name: str, default: bool) -> bool:
        raw = (self.get(name) or "").lower()
        if not raw:
            return default
        if raw in ("1", "true", "yes", "on"):
            return True
        if raw in ("0", "false", "no", "off"):
            return False
        raise DestinationConfigError(f"{self.prefix}_{name} must be true or false")

    def require(self, *names: str) -> None:
        missing = [f"{self.prefix}_{n}" for n in names if not self.get(n)]
        if missing:
            raise DestinationConfigError(
                f"{self.prefix.lower()} destination is incomplete; set " + ", ".join(missing)
            )

    def bearer(
        self,
        token_url: str,
        scope: str | None = None,
        basic: bool = False,
        public_client: bool = False,
    ) -> BearerAuth:
        """A fixed access token, or an OAuth client; `public_client` allows one
        registered without a secret."""
        token = self.get("ACCESS_TOKEN")
        if token:
            return BearerAuth(access_token=token)
        if self.get("REFRESH_TOKEN") or self.get("CLIENT_ID"):
            secret = () if public_client else ("CLIENT_SECRET",)
            self.require("CLIENT_ID", *secret, "REFRESH_TOKEN")
            return BearerAuth(
                oauth=OAuthClient(
                    token_url=self.url("TOKEN_URL", token_url),
                    client_id=self.get("CLIENT_ID") or "",
                    client_secret=self.get("CLIENT_SECRET"),
                    refresh_token=self.get("REFRESH_TOKEN") or "",
                    scope=scope,
                    basic_auth=basic,
                )
            )
        return BearerAuth()


def _batch(env: _Env, default: int, limit: int | None = None) -> int:
    size = env.number("BATCH_SIZE", default, integer=True)
    if size < 1 or (limit is not None and size > limit):
        bound = f"1..{limit}" if limit else "at least 1"
        raise DestinationConfigError(f"{env.prefix}_BATCH_SIZE must be {bound}")
    return int(size)


def _keap(env: _Env) -> keap.KeapConfig | None:
    bearer = env.bearer(keap.TOKEN_URL, basic=True)
    api_key = env.get("API_KEY")
    if not api_key and not bearer.configured:
        return None
    method = (env.get("METHOD") or "rest").lower()
    if method not in ("rest", "xmlrpc"):
        raise DestinationConfigError("KEAP_METHOD must be rest or xmlrpc")
    return keap.KeapConfig(
        api_key=api_key,
        bearer=bearer,
        base_url=env.url("BASE_URL", keap.DEFAULT_BASE_URL),
        method=method,
        batch_size=_batch(env, 100),
        concurrency=max(1, env.number("CONCURRENCY", 4, integer=True)),
        # Unset: paced at the credential kind's per-minute quota (keap_quota).
        max_requests_per_second=env.number("MAX_RPS", None),
    )


def _meta(env: _Env) -> meta.MetaConfig | None:
    token = env.get("ACCESS_TOKEN")
    if not token:
        return None
    if not env.ids("AUDIENCE_IDS") and not env.get("AD_ACCOUNT_ID"):
        raise DestinationConfigError(
            "meta destination is incomplete; set META_AUDIENCE_IDS or META_AD_ACCOUNT_ID"
        )
    return meta.MetaConfig(
        access_token=token,
        audience_ids=env.ids("AUDIENCE_IDS"),
        ad_account_id=env.get("AD_ACCOUNT_ID"),
        exclusion_audience_id=env.get("EXCLUSION_AUDIENCE_ID"),
        base_url=env.url("BASE_URL", meta.DEFAULT_BASE_URL),
        batch_size=_batch(env, meta.MAX_ROWS, meta.MAX_ROWS),
        app_secret=env.get("APP_SECRET"),
    )


def _google(env: _Env) -> google.GoogleConfig | None:
    api = (env.get("API") or "data_manager").lower()
    if api not in ("data_manager", "ads_api"):
        raise DestinationConfigError("GOOGLE_API must be data_manager or ads_api")
    scope = google.ADS_SCOPE if api == "ads_api" else google.DATA_MANAGER_SCOPE
    bearer = env.bearer(google.TOKEN_URL, scope=scope)
    if not bearer.configured:
        return None
    env.require("OPERATING_ACCOUNT_ID", "USER_LIST_IDS")
    if api == "ads_api":
        env.require("DEVELOPER_TOKEN")
    return google.GoogleConfig(
        operating_account_id=env.get("OPERATING_ACCOUNT_ID") or "",
        user_list_ids=env.ids("USER_LIST_IDS"),
        bearer=bearer,
        login_account_id=env.get("LOGIN_ACCOUNT_ID"),
        account_type=env.get("ACCOUNT_TYPE") or env.get("PRODUCT") or "GOOGLE_ADS",
        api=api,
        base_url=env.url("BASE_URL", google.DEFAULT_BASE_URL),
        ads_base_url=env.url("ADS_BASE_URL", google.DEFAULT_ADS_BASE_URL),
        developer_token=env.get("DEVELOPER_TOKEN"),
        batch_size=_batch(env, google.MAX_MEMBERS, google.MAX_MEMBERS),
    )


def _linkedin(env: _Env) -> linkedin.LinkedInConfig | None:
    bearer = env.bearer(linkedin.TOKEN_URL)
    if not bearer.configured:
        return None
    env.require("SEGMENT_IDS")
    version = env.get("VERSION", linkedin.DEFAULT_VERSION) or linkedin.DEFAULT_VERSION
    try:
        linkedin.version_month(version)
    except ValueError:
        raise DestinationConfigError(
            f"LINKEDIN_VERSION must be a LinkedIn version, YYYYMM (such as "
            f"{linkedin.DEFAULT_VERSION}), got {version[:20]!r}"
        ) from None
    return linkedin.LinkedInConfig(
        segment_ids=env.ids("SEGMENT_IDS"),
        bearer=bearer,
        exclusion_segment_id=env.get("EXCLUSION_SEGMENT_ID"),
        base_url=env.url("BASE_URL", linkedin.DEFAULT_BASE_URL),
        version=version,
        batch_size=_batch(env, linkedin.DEFAULT_BATCH),
    )


def _microsoft(env: _Env) -> microsoft.MicrosoftConfig | None:
    # A desktop/mobile ("public client") registration has no secret.
    bearer = env.bearer(microsoft.TOKEN_URL, scope=microsoft.SCOPE, public_client=True)
    if not bearer.configured:
        return None
    env.require("DEVELOPER_TOKEN", "CUSTOMER_ID", "ACCOUNT_ID", "AUDIENCE_IDS")
    audiences = env.ids("AUDIENCE_IDS")
    exclusion = env.get("EXCLUSION_AUDIENCE_ID")
    if not all(a.isdigit() for a in (*audiences, *([exclusion] if exclusion else []))):
        raise DestinationConfigError("MICROSOFT_AUDIENCE_IDS are numeric customer list ids")
    return microsoft.MicrosoftConfig(
        developer_token=env.get("DEVELOPER_TOKEN") or "",
        customer_id=env.get("CUSTOMER_ID") or "",
        account_id=env.get("ACCOUNT_ID") or "",
        audience_ids=audiences,
        bearer=bearer,
        exclusion_audience_id=exclusion,
        accept_customer_match_terms=env.flag("ACCEPT_CUSTOMER_MATCH_TERMS", False),
        base_url=env.url("BASE_URL", microsoft.DEFAULT_BASE_URL),
        batch_size=_batch(env, microsoft.MAX_ITEMS, microsoft.MAX_ITEMS),
    )


def destinations_from_env(env: Mapping[str, str], today: date | None = None) -> DestinationSettings:
    """Every destination whose credentials are set; raises DestinationConfigError.
    `today` (UTC by default) dates the warnings."""
    keap_config = _keap(_Env(env, "KEAP"))
    meta_config = _meta(_Env(env, "META"))
    google_config = _google(_Env(env, "GOOGLE"))
    linkedin_config = _linkedin(_Env(env, "LINKEDIN"))
    microsoft_config = _microsoft(_Env(env, "MICROSOFT"))
    disabled = frozenset(
        name for name in DESTINATION_NAMES if not _Env(env, name.upper()).flag("ENABLED", True)
    )
    sync = _Env(env, "SYNC")
    today = today or datetime.now(UTC).date()
    warnings: dict[str, str] = {}
    if linkedin_config is not None and "linkedin" not in disabled:
        warning = linkedin.version_warning(linkedin_config.version, today)
        if warning:
            warnings["linkedin"] = warning
    return DestinationSettings(
        keap=keap_config,
        meta=meta_config,
        google=google_config,
        linkedin=linkedin_config,
        microsoft=microsoft_config,
        disabled=disabled,
        warnings=warnings,
        email_purpose=_Env(env, "KEAP").get("PURPOSE", "email_marketing") or "email_marketing",
        ads_purpose=_Env(env, "AD_AUDIENCES").get("PURPOSE", "ad_audiences") or "ad_audiences",
        keap_pull_minutes=_Env(env, "KEAP").number("PULL_MINUTES", 15.0),
        sync=SyncSettings(
            max_attempts=max(1, sync.number("MAX_ATTEMPTS", 8, integer=True)),
            permanent_attempts=max(1, sync.number("PERMANENT_ATTEMPTS", 3, integer=True)),
            backoff_seconds=sync.number("BACKOFF_SECONDS", 30.0),
            backoff_max_seconds=sync.number("BACKOFF_MAX_SECONDS", 3600.0),
            rate_limit_seconds=sync.number("RATE_LIMIT_SECONDS", 60.0),
            lease_seconds=max(1.0, sync.number("LEASE_SECONDS", 300.0)),
            poll_seconds=sync.number("POLL_SECONDS", 10.0),
            deadline_hours=sync.number("DEADLINE_HOURS", 24.0),
            http_timeout_seconds=max(0.1, sync.number("HTTP_TIMEOUT_SECONDS", 30.0)),
            status_seconds=max(1.0, sync.number("STATUS_SECONDS", 300.0)),
            in_place_retries=sync.number("IN_PLACE_RETRIES", 3, integer=True),
        ),
    )
