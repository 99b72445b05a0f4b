"""The operator's commands, run as an operator would, against the test database."""

import os
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from production_env import PRODUCTION_ENV, fixed_key

from suppression.cli.main import ensure_first_admin_key, main
from suppression.config.settings import ConfigError, Settings

# The commands open engines of their own, some in processes of their own.
pytestmark = pytest.mark.committed


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
    settings = Settings.from_env(
        {**PRODUCTION_ENV, "ADDRESS_SEALING_KEYS": f"1:{fixed_key('s1')},2:{fixed_key('s2')}"}
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


def _production(monkeypatch, database: str, **changes: str) -> None:
    for name, value in {**PRODUCTION_ENV, "DATABASE_URL": database, **changes}.items():
        monkeypatch.setenv(name, value)


def test_a_good_production_configuration_migrates_and_checks(monkeypatch, tmp_path):
    _production(monkeypatch, f"sqlite:///{tmp_path / 'prod.db'}")
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "instance"))
    upgrade = CliRunner().invoke(main, ["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    check = CliRunner().invoke(main, ["db", "check"])
    assert check.exit_code == 0, check.output


def test_a_weak_production_configuration_runs_no_command(monkeypatch, tmp_path):
    _production(
        monkeypatch,
        f"sqlite:///{tmp_path / 'prod.db'}",
        SECRET_KEY="x" * 40,
        SESSION_COOKIE_SECURE="false",
    )
    monkeypatch.delenv("METRICS_TOKEN")
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "production refuses these settings" in result.output
    for name in ("SECRET_KEY", "SESSION_COOKIE_SECURE", "METRICS_TOKEN"):
        assert f"- {name} " in result.output
    assert not (tmp_path / "prod.db").exists()


def test_gunicorn_does_not_serve_a_weak_production_configuration(tmp_path):
    """The Procfile's web process: the workers build the app from the environment,
    and a refused configuration stops the server instead of serving."""
    root = Path(__file__).resolve().parent.parent
    environ = {
        **os.environ,
        **PRODUCTION_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "SUPPRESSION_INSTANCE": str(tmp_path / "instance"),
        "REDIS_URL": "memory://",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1", "wsgi:app"],
        cwd=root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = server.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        server.kill()
        output, _ = server.communicate()
        pytest.fail("gunicorn kept serving a refused configuration:\n" + output)
    assert server.returncode != 0
    assert "REDIS_URL must name the Redis server" in output


@pytest.mark.slow
def test_a_good_production_configuration_serves_with_its_metrics_token(tmp_path):
    """The whole start: migrate, then gunicorn builds the app from a production
    environment and answers on a real socket; /metrics wants METRICS_TOKEN."""
    root = Path(__file__).resolve().parent.parent
    environ = {
        **os.environ,
        **PRODUCTION_ENV,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'prod.db'}",
        "SUPPRESSION_INSTANCE": str(tmp_path / "instance"),
    }
    suppression = str(Path(sys.executable).with_name("suppression"))
    subprocess.run([suppression, "db", "upgrade"], env=environ, check=True, capture_output=True)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "wsgi:app"],
        cwd=root,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, "gunicorn stopped"
            try:
                if requests.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):
                # Listening before its worker has built the app: on a busy machine
                # the first request may wait longer than the probe's timeout.
                assert time.monotonic() < deadline, "gunicorn did not answer"
                time.sleep(0.2)
        refused = requests.get(f"{base}/metrics", timeout=5)
        assert refused.status_code == 401
        assert refused.json()["code"] == 401
        token = {"Authorization": f"Bearer {PRODUCTION_ENV['METRICS_TOKEN']}"}
        scraped = requests.get(f"{base}/metrics", headers=token, timeout=5)
        assert scraped.status_code == 200
        assert "suppression_http_requests_total" in scraped.text
    finally:
        server.terminate()
        server.wait(timeout=30)
