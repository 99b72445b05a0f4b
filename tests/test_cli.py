"""The operator's commands, run as an operator would, against the test database."""

import os
import stat

import pytest
from click.testing import CliRunner

from suppression.cli import ensure_first_admin_key, main
from suppression.config import ConfigError, Settings


@pytest.fixture
def cli_env(app, database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    return CliRunner()


def test_keys_create_prints_the_key_alone_on_the_last_line(cli_env, client):
    result = cli_env.invoke(main, ["keys", "create", "--role", "sender", "--name", "platform"])
    assert result.exit_code == 0, result.output
    secret = result.output.strip().splitlines()[-1]
    assert secret.startswith("sk_")
    response = client.post(
        "/v1/checks", json={"addresses": []}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 200


def test_keys_revoke_stops_the_key(cli_env, client):
    result = cli_env.invoke(main, ["keys", "create", "--role", "sender", "--name", "gone"])
    secret = result.output.strip().splitlines()[-1]
    assert cli_env.invoke(main, ["keys", "revoke", "gone"]).exit_code == 0
    response = client.post(
        "/v1/checks", json={"addresses": []}, headers={"Authorization": f"Bearer {secret}"}
    )
    assert response.status_code == 401
    listing = cli_env.invoke(main, ["keys", "list"])
    assert "gone\tsender" in listing.output
    assert "revoked" in listing.output
    assert secret not in listing.output


def test_duplicate_key_name_is_refused(cli_env):
    cli_env.invoke(main, ["keys", "create", "--role", "staff", "--name", "desk"])
    result = cli_env.invoke(main, ["keys", "create", "--role", "staff", "--name", "desk"])
    assert result.exit_code != 0
    assert "exists" in result.output


def test_revoking_an_unknown_key_fails_clearly(cli_env):
    result = cli_env.invoke(main, ["keys", "revoke", "nobody"])
    assert result.exit_code != 0
    assert "no key named" in result.output


def test_first_admin_key_is_made_only_when_none_is_live(cli_env):
    settings = Settings.from_env()
    first = ensure_first_admin_key(settings)
    assert first is not None
    assert first.startswith("sk_")
    assert ensure_first_admin_key(settings) is None
    assert cli_env.invoke(main, ["keys", "revoke", "admin"]).exit_code == 0
    replacement = ensure_first_admin_key(settings)
    assert replacement is not None
    assert replacement != first


def test_db_upgrade_and_check_pass_on_the_migrated_database(cli_env):
    assert cli_env.invoke(main, ["db", "upgrade"]).exit_code == 0
    result = cli_env.invoke(main, ["db", "check"])
    assert result.exit_code == 0, result.output
    assert "agree" in result.output


def test_local_keys_are_generated_once_with_mode_0600(tmp_path):
    environ = {"SUPPRESSION_INSTANCE": str(tmp_path / "inst")}
    first = Settings.from_env(environ)
    keys_file = tmp_path / "inst" / "keys.json"
    assert stat.S_IMODE(os.stat(keys_file).st_mode) == 0o600
    second = Settings.from_env(environ)
    assert first.keys == second.keys
    assert first.database_url == f"sqlite:///{tmp_path / 'inst' / 'suppression.db'}"


def test_production_refuses_to_start_without_explicit_settings(tmp_path):
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings.from_env({"SUPPRESSION_ENV": "production", "SUPPRESSION_INSTANCE": str(tmp_path)})
    assert not (tmp_path / "keys.json").exists()


def test_production_starts_with_explicit_settings(tmp_path):
    key = "A" * 43
    settings = Settings.from_env(
        {
            "SUPPRESSION_ENV": "production",
            "DATABASE_URL": "postgresql://db.internal/suppression",
            "SECRET_KEY": "x" * 40,
            "ADDRESS_INDEX_KEY": key,
            "ADDRESS_SEALING_KEYS": f"1:{key},2:{'B' * 43}",
            "TOKEN_KEYS": f"1:{key}",
            "PUBLIC_BASE_URL": "https://optout.example.com",
        }
    )
    assert settings.is_production
    assert settings.database_url.startswith("postgresql+psycopg://")
    assert settings.keys.sealing_key_current == 2


def test_production_rejects_a_short_key(tmp_path):
    with pytest.raises(ConfigError, match="32 bytes"):
        Settings.from_env(
            {
                "SUPPRESSION_ENV": "production",
                "DATABASE_URL": "sqlite://",
                "SECRET_KEY": "x" * 40,
                "ADDRESS_INDEX_KEY": "c2hvcnQ",
                "ADDRESS_SEALING_KEYS": "1:c2hvcnQ",
                "TOKEN_KEYS": "1:c2hvcnQ",
            }
        )


def test_serve_refuses_production_without_secrets(monkeypatch):
    monkeypatch.setenv("SUPPRESSION_ENV", "production")
    monkeypatch.delenv("DATABASE_URL", raising=False)
    result = CliRunner().invoke(main, ["serve"])
    assert result.exit_code != 0
    assert "production needs explicit settings" in result.output


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EEA_POLICY", "maybe", "policy settings"),
        ("REGIMES", "XX=opt_in", "policy settings"),
        ("PURPOSES", "all", "PURPOSES"),
    ],
)
def test_bad_policy_settings_stop_the_start(tmp_path, name, value, message):
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path), name: value})
