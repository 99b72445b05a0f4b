"""What production refuses at start: settings that let the service run but leave
it weak. Each problem names the variable and how to make a good value; all of
them are reported at once, so one restart fixes them all.

The rules, for SUPPRESSION_ENV=production:

- a secret (SECRET_KEY, METRICS_TOKEN) has at least 32 characters, at least 10
  different ones, and no character fills more than a quarter of it: a random
  token passes with room to spare (`secrets.token_urlsafe(48)`: 64 characters,
  ~40 different), while `xxxx...`, `abababab...` or a word repeated do not;
- a key (ADDRESS_INDEX_KEY, each of ADDRESS_SEALING_KEYS and TOKEN_KEYS) has at
  least 16 different byte values among its 32 (random keys have ~30; all zeros,
  one repeated byte or a short pattern have a few), and no key serves twice;
- TOKEN_KEYS holds at least one key; METRICS_TOKEN is not SECRET_KEY (Prometheus'
  configuration is not where the key that signs staff sessions belongs);
- SESSION_COOKIE_SECURE is not switched off (staff sign in over HTTPS);
- REDIS_URL names a Redis server: with several workers, limits counted in each
  process's memory let every worker grant the whole budget again;
- METRICS_TOKEN is set: /metrics is public otherwise;
- SNS_TEST_HOST is not set: it lets a loopback server stand for Amazon SNS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from suppression.config.settings import Keys

MIN_SECRET_LENGTH = 32
MIN_SECRET_DISTINCT = 10
MAX_SECRET_SHARE = 0.25
MIN_KEY_DISTINCT_BYTES = 16

MAKE_SECRET = "python3 -c 'import secrets; print(secrets.token_urlsafe(48))'"
MAKE_KEY = (
    "python3 -c 'import base64, secrets; "
    "print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())'"
)
REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://", "redis+sentinel://", "redis+cluster://")


def weak_secret(value: str) -> str | None:
    """Why a secret is too weak to run production with, or None."""
    if len(value) < MIN_SECRET_LENGTH:
        return f"has {len(value)} characters, fewer than {MIN_SECRET_LENGTH}"
    counts = Counter(value)
    if len(counts) < MIN_SECRET_DISTINCT:
        return f"has only {len(counts)} different characters (at least {MIN_SECRET_DISTINCT})"
    most = counts.most_common(1)[0][1]
    if most > len(value) * MAX_SECRET_SHARE:
        return f"repeats one character {most} times in {len(value)} (at most a quarter)"
    return None


def degenerate_key(key: bytes) -> str | None:
    """Why a key cannot be random, or None."""
    distinct = len(set(key))
    if distinct < MIN_KEY_DISTINCT_BYTES:
        return (
            f"has only {distinct} different byte values of {len(key)} "
            f"(random keys have about 30; at least {MIN_KEY_DISTINCT_BYTES})"
        )
    return None


def production_problems(
    env: Mapping[str, str], keys: Keys, session_cookie_secure: bool
) -> list[str]:
    """Every reason production must not start with these settings."""
    problems: list[str] = []
    reason = weak_secret(keys.secret_key)
    if reason:
        problems.append(f"SECRET_KEY {reason}: make one with {MAKE_SECRET}")
    if not keys.token_keys:
        problems.append(f"TOKEN_KEYS holds no key: set it to 1:<key>, a key made with {MAKE_KEY}")
    named = {
        "ADDRESS_INDEX_KEY": keys.index_key,
        **{f"ADDRESS_SEALING_KEYS key {i}": key for i, key in keys.sealing_keys.items()},
        **{f"TOKEN_KEYS key {i}": key for i, key in keys.token_keys.items()},
    }
    first_named: dict[bytes, str] = {}
    for name, key in named.items():
        reason = degenerate_key(key)
        if reason:
            problems.append(f"{name} {reason}: make a key with {MAKE_KEY}")
        elif key in first_named:
            problems.append(
                f"{name} is the same key as {first_named[key]}: each needs its own, "
                f"made with {MAKE_KEY}"
            )
        first_named.setdefault(key, name)
    if not session_cookie_secure:
        problems.append(
            "SESSION_COOKIE_SECURE is off: staff sign in over HTTPS in production; "
            "remove the variable or set it to true"
        )
    redis_url = env.get("REDIS_URL", "").strip()
    if not redis_url.startswith(REDIS_SCHEMES):
        problems.append(
            "REDIS_URL must name the Redis server the workers share their rate-limit "
            "counts in (redis://host:6379/0, or rediss:// with TLS): counted per process, "
            f"every worker grants the whole budget again{_got(redis_url)}"
        )
    metrics_token = env.get("METRICS_TOKEN", "")
    if not metrics_token:
        problems.append(
            "METRICS_TOKEN is not set: /metrics would be public; set it, and give "
            f"Prometheus the same as its bearer token; make one with {MAKE_SECRET}"
        )
    elif metrics_token == keys.secret_key:
        problems.append(
            "METRICS_TOKEN is SECRET_KEY: the scraper's token must not sign staff "
            f"sessions; make another with {MAKE_SECRET}"
        )
    else:
        reason = weak_secret(metrics_token)
        if reason:
            problems.append(f"METRICS_TOKEN {reason}: make one with {MAKE_SECRET}")
    if env.get("SNS_TEST_HOST", "").strip():
        problems.append(
            "SNS_TEST_HOST is set: it lets a loopback server stand for Amazon SNS and is "
            "for tests only; remove it"
        )
    return problems


def _got(value: str) -> str:
    # Only the scheme: a Redis URL may hold a password.
    return f" (got {value.partition('://')[0]}://...)" if "://" in value else ""
