"""Settings for unsubscribe links: TOKEN_KEYS, local keys, validity, limits, alarm."""

from __future__ import annotations

import json
import os
import stat

import pytest
from production_env import PRODUCTION_ENV, fixed_key

from suppression.config.environment import links_from_env
from suppression.config.settings import ConfigError, LinkSettings, Settings

PRODUCTION = {
    **PRODUCTION_ENV,
    "TOKEN_KEYS": f"1:{fixed_key('token 1')},2:{fixed_key('token 2')}",
}
KEY = fixed_key("token 3")


def test_production_reads_every_token_key_and_mints_with_the_highest():
    settings = Settings.from_env(PRODUCTION)
    assert set(settings.keys.token_keys) == {1, 2}
    # Every default: one-clicks folded in the background.
    assert settings.links == LinkSettings(one_click_fold="background")


def test_production_refuses_to_start_without_token_keys():
    with pytest.raises(ConfigError, match="TOKEN_KEYS"):
        Settings.from_env({**PRODUCTION, "TOKEN_KEYS": ""})


@pytest.mark.parametrize("origin", [None, "http://optout.example.com", "optout.example.com"])
def test_production_needs_an_https_public_base_url(origin):
    environ = dict(PRODUCTION)
    environ.pop("PUBLIC_BASE_URL")
    if origin is not None:
        environ["PUBLIC_BASE_URL"] = origin
    with pytest.raises(ConfigError, match="PUBLIC_BASE_URL"):
        Settings.from_env(environ)


def test_token_key_ids_must_fit_in_one_byte():
    with pytest.raises(ConfigError, match=r"0\.\.255"):
        Settings.from_env({**PRODUCTION, "TOKEN_KEYS": f"256:{KEY}"})


def test_local_keys_include_a_token_key(tmp_path):
    settings = Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path)})
    document = json.loads((tmp_path / "keys.json").read_text())
    assert document["TOKEN_KEYS"].startswith("1:")
    assert set(settings.keys.token_keys) == {1}


def test_an_older_keys_file_gets_a_token_key_added_once_and_stays_private(tmp_path):
    older = {
        "SECRET_KEY": "s" * 48,
        "ADDRESS_INDEX_KEY": KEY,
        "ADDRESS_SEALING_KEYS": f"1:{KEY}",
    }
    path = tmp_path / "keys.json"
    path.write_text(json.dumps(older))
    os.chmod(path, 0o600)
    first = Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path)})
    second = Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path)})
    document = json.loads(path.read_text())
    assert {k: document[k] for k in older} == older  # the other keys are untouched
    assert first.keys.token_keys == second.keys.token_keys
    assert len(first.keys.token_keys[1]) == 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_development_with_keys_from_the_environment_but_no_token_key_uses_a_local_one(tmp_path):
    environ = {
        "SUPPRESSION_INSTANCE": str(tmp_path),
        "SECRET_KEY": "x" * 40,
        "ADDRESS_INDEX_KEY": KEY,
        "ADDRESS_SEALING_KEYS": f"1:{KEY}",
    }
    settings = Settings.from_env(environ)
    assert settings.keys.index_key == Settings.from_env(environ).keys.index_key
    assert set(settings.keys.token_keys) == {1}
    with_tokens = Settings.from_env({**environ, "TOKEN_KEYS": f"7:{KEY}"})
    assert set(with_tokens.keys.token_keys) == {7}


def test_link_settings_come_from_the_environment():
    links = links_from_env(
        {
            "UNSUBSCRIBE_LINK_DAYS": "365",
            "PUBLIC_RATE_LIMIT": "10 per minute;100 per hour",
            "ONE_CLICK_RATE_LIMIT": "50 per second",
            "UNSUBSCRIBE_ALARM_THRESHOLD": "200",
            "UNSUBSCRIBE_ALARM_WINDOW_MINUTES": "5",
            "PREFERENCE_NOTICE_VERSION": "2027-01",
            "ONE_CLICK_FOLD": "inline",
        }
    )
    assert links == LinkSettings(
        365, "10 per minute;100 per hour", "50 per second", 200, 5, "2027-01", "inline"
    )


def test_links_stay_valid_for_at_least_90_days_by_default():
    assert LinkSettings().validity_days >= 90


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("UNSUBSCRIBE_LINK_DAYS", "30", "at least 60"),
        ("PUBLIC_RATE_LIMIT", "lots", "unsubscribe link settings"),
        ("ONE_CLICK_RATE_LIMIT", "5 per fortnight", "unsubscribe link settings"),
        ("UNSUBSCRIBE_ALARM_THRESHOLD", "0", "positive"),
        ("UNSUBSCRIBE_ALARM_WINDOW_MINUTES", "ten", "unsubscribe link settings"),
        ("PREFERENCE_NOTICE_VERSION", " ", "1 to 100"),
    ],
)
def test_bad_link_settings_stop_the_start(name, value, message):
    with pytest.raises(ConfigError, match=message):
        links_from_env({name: value})
