"""gunicorn's settings live in gunicorn.conf.py at the project root: the Procfile's
web line (and so a plain `gunicorn wsgi:app`) reads it from there, every value
comes from the environment, a bad value stops gunicorn naming the variable, and
/metrics adds up every worker's numbers. (`suppression serve` passing it from
another directory, with its flags winning, is shown by
tests/security/test_slow_clients.py on the running server.)"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from gunicorn_server import Served

# The server runs in processes of its own.
pytestmark = pytest.mark.committed

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GUNICORN_VARIABLES = (
    "PORT",
    "WEB_CONCURRENCY",
    "GUNICORN_BIND",
    "GUNICORN_THREADS",
    "GUNICORN_KEEPALIVE",
    "GUNICORN_TIMEOUT",
    "GUNICORN_WORKER_CONNECTIONS",
    "GUNICORN_ACCESS_LOG",
    "GUNICORN_HEADER_TIMEOUT",
    "GUNICORN_IO_TIMEOUT",
    "GUNICORN_CMD_ARGS",
    "PROMETHEUS_MULTIPROC_DIR",
)
HEALTHZ_COUNT = re.compile(
    r'^suppression_http_requests_total\{(?=[^}]*endpoint="/healthz")(?=[^}]*status="200")'
    r"[^}]*\} ([0-9.e+]+)$",
    re.MULTILINE,
)


def web_command() -> str:
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.startswith("web:"):
            return line.removeprefix("web:").strip()
    raise AssertionError("the Procfile has no web line")


def printed_config(**environ: str) -> dict[str, str]:
    """The settings gunicorn would run the Procfile's web line with."""
    env = {k: v for k, v in os.environ.items() if k not in GUNICORN_VARIABLES}
    env.update(environ, PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}")
    done = subprocess.run(
        ["sh", "-c", web_command() + " --print-config"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(re.findall(r"^(\w+)\s+= (.*)$", done.stdout, re.MULTILINE))


@pytest.mark.slow
def test_the_procfile_web_line_runs_the_slow_client_worker_with_its_defaults():
    config = printed_config()
    assert config["worker_class"] == "suppression.server.gunicorn_worker.SlowClientWorker"
    assert config["bind"] == "['0.0.0.0:8000']"
    assert (config["workers"], config["threads"]) == ("2", "4")
    assert (config["keepalive"], config["timeout"]) == ("5", "120")
    assert config["worker_connections"] == "1000"
    assert config["accesslog"] == "None"
    assert config["control_socket_disable"] == "True"


@pytest.mark.slow
def test_the_environment_sets_each_value():
    config = printed_config(
        PORT="9123",
        WEB_CONCURRENCY="3",
        GUNICORN_THREADS="6",
        GUNICORN_KEEPALIVE="30",
        GUNICORN_TIMEOUT="60",
        GUNICORN_WORKER_CONNECTIONS="200",
        GUNICORN_ACCESS_LOG="-",
    )
    assert config["bind"] == "['0.0.0.0:9123']"
    assert (config["workers"], config["threads"]) == ("3", "6")
    assert (config["keepalive"], config["timeout"]) == ("30", "60")
    assert (config["worker_connections"], config["accesslog"]) == ("200", "-")
    assert printed_config(GUNICORN_BIND="127.0.0.1:8001")["bind"] == "['127.0.0.1:8001']"


@pytest.mark.parametrize(
    ("name", "value"), [("GUNICORN_THREADS", "many"), ("GUNICORN_HEADER_TIMEOUT", "0")]
)
def test_a_bad_value_stops_gunicorn_naming_the_variable(name, value):
    with pytest.raises(subprocess.CalledProcessError) as stopped:
        printed_config(**{name: value})
    assert name in stopped.value.stdout + stopped.value.stderr


def healthz_answered(base: str) -> float:
    with urllib.request.urlopen(base + "/metrics", timeout=10) as page:
        text = page.read().decode()
    found = HEALTHZ_COUNT.search(text)
    assert found, text[:2000]
    return float(found.group(1))


@pytest.mark.slow
def test_the_procfile_web_line_serves_with_metrics_added_up_over_its_workers(
    database_url, key_env, admin, tmp_path
):
    env = {k: v for k, v in os.environ.items() if k not in GUNICORN_VARIABLES}
    env.update(
        key_env,
        SUPPRESSION_ENV="development",
        SUPPRESSION_INSTANCE=str(tmp_path / "instance"),
        DATABASE_URL=database_url,
        CHECK_PROCESSES="0",
        WEB_CONCURRENCY="2",
    )
    earlier = set(Path(tempfile.gettempdir()).glob("suppression-metrics-*"))
    with Served(env, tmp_path, workers=2, cwd=ROOT, command=web_command()) as server:
        before = healthz_answered(server.base)
        with ThreadPoolExecutor(8) as pool:  # at once: both workers answer some
            answered = list(pool.map(lambda _: healthz(server.base), range(40)))
        # Whichever worker answers the scrape, it counts the answers of both.
        seen = {healthz_answered(server.base) for _ in range(8)}
        workers = server.worker_pids()
        # Each worker writes its numbers to a file of its own in the folder made
        # for this server (another server of a parallel test run has its own),
        # once it has loaded the app: on a busy machine that can follow the scrape.
        deadline = time.monotonic() + 60
        while True:
            made = set(Path(tempfile.gettempdir()).glob("suppression-metrics-*")) - earlier
            mine = [f for f in made if (f / f"counter_{workers[0]}.db").exists()]
            if mine or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        [folder] = mine
        files = {path.name for path in folder.iterdir()}
    assert {f"counter_{pid}.db" for pid in workers} <= files
    assert answered == [200] * 40
    assert seen == {before + 40}
    assert "Using worker: suppression.server.gunicorn_worker.SlowClientWorker" in server.output()
    assert not folder.exists()  # removed when gunicorn stopped


def healthz(base: str) -> int:
    with urllib.request.urlopen(base + "/healthz", timeout=10) as answer:
        return answer.status
