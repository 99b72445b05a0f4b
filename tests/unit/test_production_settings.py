"""SUPPRESSION_ENV=production refuses weak settings at start, naming the variable
and how to make a good value; development starts as it always has."""

from __future__ import annotations

import base64

import pytest
from production_env import PRODUCTION_ENV, fixed_key

from suppression.config.production import degenerate_key, weak_secret
from suppression.config.settings import ConfigError, Settings

MAKE_SECRET = "secrets.token_urlsafe(48)"
MAKE_KEY = "secrets.token_bytes(32)"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


def _refusal(**changes: str | None) -> str:
    environ = {**PRODUCTION_ENV, **changes}
    environ = {name: value for name, value in environ.items() if value is not None}
    with pytest.raises(ConfigError) as refused:
        Settings.from_env(environ)
    return str(refused.value)


def test_a_good_production_configuration_starts():
    settings = Settings.from_env(PRODUCTION_ENV)
    assert settings.is_production
    assert settings.session_cookie_secure
    assert settings.redis_url == PRODUCTION_ENV["REDIS_URL"]
    assert settings.metrics_token == PRODUCTION_ENV["METRICS_TOKEN"]
    assert "mQ7-Xa2r" not in repr(settings)  # the token stays out of logs and tracebacks


@pytest.mark.parametrize(
    ("changes", "problem", "how"),
    [
        ({"SECRET_KEY": "x" * 40}, "SECRET_KEY has only 1 different characters", MAKE_SECRET),
        ({"SECRET_KEY": "ab" * 20}, "SECRET_KEY has only 2 different characters", MAKE_SECRET),
        (
            {"SECRET_KEY": "correcthorsecorrecthorsecorrecthorse"},
            "SECRET_KEY has only 7 different characters",
            MAKE_SECRET,
        ),
        (
            {"SECRET_KEY": "0" * 20 + "123456789abcdefghijk"},
            "SECRET_KEY repeats one character 20 times in 40",
            MAKE_SECRET,
        ),
        (
            {"ADDRESS_INDEX_KEY": _b64(bytes(32))},
            "ADDRESS_INDEX_KEY has only 1 different",
            MAKE_KEY,
        ),
        (
            {"ADDRESS_SEALING_KEYS": f"1:{fixed_key('old')},2:{_b64(bytes([255]) * 32)}"},
            "ADDRESS_SEALING_KEYS key 2 has only 1 different",
            MAKE_KEY,
        ),
        (
            {"TOKEN_KEYS": f"1:{_b64(bytes(range(8)) * 4)}"},
            "TOKEN_KEYS key 1 has only 8 different",
            MAKE_KEY,
        ),
        ({"TOKEN_KEYS": ","}, "TOKEN_KEYS holds no key", MAKE_KEY),
        ({"ADDRESS_SEALING_KEYS": ","}, "ADDRESS_SEALING_KEYS holds no key", MAKE_KEY),
        (
            {"TOKEN_KEYS": f"1:{PRODUCTION_ENV['ADDRESS_INDEX_KEY']}"},
            "TOKEN_KEYS key 1 is the same key as ADDRESS_INDEX_KEY",
            MAKE_KEY,
        ),
        ({"SESSION_COOKIE_SECURE": "false"}, "SESSION_COOKIE_SECURE is off", "set it to true"),
        ({"REDIS_URL": None}, "REDIS_URL must name the Redis server", "redis://host:6379/0"),
        ({"REDIS_URL": "memory://"}, "REDIS_URL must name the Redis server", "redis://host"),
        ({"METRICS_TOKEN": None}, "METRICS_TOKEN is not set", MAKE_SECRET),
        ({"METRICS_TOKEN": "prometheus"}, "METRICS_TOKEN has 10 characters", MAKE_SECRET),
        (
            {"METRICS_TOKEN": PRODUCTION_ENV["SECRET_KEY"]},
            "METRICS_TOKEN is SECRET_KEY",
            MAKE_SECRET,
        ),
    ],
)
def test_production_refuses_a_weak_setting_naming_it_and_how_to_fix_it(changes, problem, how):
    message = _refusal(**changes)
    assert problem in message
    line = next(line for line in message.splitlines() if problem in line)
    assert how in line
    # A refused secret or key is never repeated back.
    for name, value in changes.items():
        if name != "REDIS_URL" and value and len(value) > 8:
            assert value not in message


def test_every_weak_setting_is_named_at_once():
    message = _refusal(
        SECRET_KEY="x" * 40,
        ADDRESS_INDEX_KEY=_b64(bytes(32)),
        SESSION_COOKIE_SECURE="0",
        REDIS_URL=None,
        METRICS_TOKEN=None,
    )
    assert message.startswith("production refuses these settings:")
    for name in (
        "SECRET_KEY",
        "ADDRESS_INDEX_KEY",
        "SESSION_COOKIE_SECURE",
        "REDIS_URL",
        "METRICS_TOKEN",
    ):
        assert f"- {name} " in message


def test_a_redis_url_with_a_password_is_not_repeated_in_the_refusal():
    message = _refusal(REDIS_URL="memcached://user:hunter2-secret@cache:11211")
    assert "hunter2" not in message
    assert "memcached://..." in message


def test_a_metrics_token_that_cannot_travel_in_a_header_is_refused_everywhere(tmp_path):
    with pytest.raises(ConfigError, match="METRICS_TOKEN must be visible ASCII"):
        Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path), "METRICS_TOKEN": "two words"})


def test_development_keeps_starting_without_any_of_it(tmp_path):
    settings = Settings.from_env(
        {
            "SUPPRESSION_INSTANCE": str(tmp_path),
            "SECRET_KEY": "x" * 40,
            "SESSION_COOKIE_SECURE": "false",
        }
    )
    assert not settings.is_production
    assert settings.redis_url is None
    assert settings.metrics_token is None


def test_random_secrets_and_keys_pass_the_rules():
    import os
    import secrets

    for _ in range(200):
        assert weak_secret(secrets.token_urlsafe(48)) is None
        assert weak_secret(secrets.token_hex(32)) is None
        assert degenerate_key(os.urandom(32)) is None
