"""One Settings object, built once from the environment (or a dict in tests)."""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from suppression.domain.jurisdictions import (
    DEFAULT_REGIMES,
    Regime,
    RegimeTable,
    normalise_country,
    parse_regimes,
)
from suppression.domain.policy import DEFAULT_PURPOSES, EeaPolicy, PolicySettings

KEYS_FILE = "keys.json"
DEFAULT_MAX_CONTENT_LENGTH = 256 * 1024 * 1024  # a 1,000,000-address JSON list is ~30 MB


class ConfigError(RuntimeError):
    """The environment does not describe a service that may start."""


@dataclass(frozen=True)
class Keys:
    secret_key: str
    index_key: bytes
    sealing_keys: Mapping[int, bytes]
    sealing_key_current: int


@dataclass(frozen=True)
class Settings:
    env: str
    instance_path: Path
    database_url: str
    keys: Keys
    policy: PolicySettings = field(default_factory=PolicySettings)
    max_content_length: int = DEFAULT_MAX_CONTENT_LENGTH
    max_batch_events: int = 10_000
    check_chunk_size: int = 50_000
    public_base_url: str = "http://127.0.0.1:8000"
    unsubscribe_mailbox: str | None = None
    redis_url: str | None = None

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
                )
                if not env.get(name)
            ]
            if missing:
                raise ConfigError(
                    "production needs explicit settings; missing: " + ", ".join(missing)
                )
            keys = keys_from_env(env)
            database_url = env["DATABASE_URL"]
        else:
            instance.mkdir(mode=0o700, parents=True, exist_ok=True)
            keys = keys_from_env(env) if env.get("ADDRESS_INDEX_KEY") else local_keys(instance)
            database_url = env.get("DATABASE_URL") or f"sqlite:///{instance / 'suppression.db'}"
        return cls(
            env=mode,
            instance_path=instance,
            database_url=normalise_database_url(database_url),
            keys=keys,
            policy=policy_from_env(env),
            max_content_length=int(env.get("MAX_CONTENT_LENGTH", DEFAULT_MAX_CONTENT_LENGTH)),
            max_batch_events=int(env.get("MAX_BATCH_EVENTS", 10_000)),
            check_chunk_size=int(env.get("CHECK_CHUNK_SIZE", 50_000)),
            public_base_url=env.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/"),
            unsubscribe_mailbox=env.get("UNSUBSCRIBE_MAILBOX") or None,
            redis_url=env.get("REDIS_URL") or None,
        )


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


def keys_from_env(env: Mapping[str, str]) -> Keys:
    """ADDRESS_SEALING_KEYS is `id:base64,id:base64`; the highest id seals new data."""
    sealing: dict[int, bytes] = {}
    for part in filter(None, env.get("ADDRESS_SEALING_KEYS", "").split(",")):
        key_id, sep, value = part.strip().partition(":")
        if not sep or not key_id.isdigit():
            raise ConfigError("ADDRESS_SEALING_KEYS entries are id:base64")
        sealing[int(key_id)] = _decode_key(value, "ADDRESS_SEALING_KEYS")
    if not sealing:
        raise ConfigError("ADDRESS_SEALING_KEYS holds no key")
    secret = env.get("SECRET_KEY", "")
    if len(secret) < 32:
        raise ConfigError("SECRET_KEY must be at least 32 characters")
    return Keys(
        secret_key=secret,
        index_key=_decode_key(env.get("ADDRESS_INDEX_KEY", ""), "ADDRESS_INDEX_KEY"),
        sealing_keys=sealing,
        sealing_key_current=max(sealing),
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
        }
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                json.dump(document, handle, indent=2)
    return keys_from_env(json.loads(path.read_text()))


def _countries(text: str) -> frozenset[str]:
    return frozenset(normalise_country(c) for c in text.split(",") if c.strip())


def policy_from_env(env: Mapping[str, str]) -> PolicySettings:
    purposes = tuple(
        p.strip() for p in env.get("PURPOSES", ",".join(DEFAULT_PURPOSES)).split(",") if p.strip()
    )
    if not purposes or "all" in purposes:
        raise ConfigError("PURPOSES must name at least one purpose, and not 'all'")
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
