"""The service behind a real reverse-proxy hop (tests/reverse_proxy.py: TLS on
loopback, X-Forwarded-For and X-Forwarded-Proto added), reached by clients at
different loopback addresses: with TRUSTED_PROXY_HOPS=1 each client is itself
to the page rate limit, the sign-in throttle, the stored evidence and the
server's access log; with the default 0 they are all the proxy."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from reverse_proxy import Client, reverse_proxy
from seeding import api_key, fold_one_clicks
from sqlalchemy import select
from werkzeug.serving import make_server

from suppression.config.settings import LinkSettings
from suppression.services.staff.accounts import create_staff_user
from suppression.store.models import AccessLogEntry, ConsentEvent

# Servers in threads and processes of their own.
pytestmark = pytest.mark.committed

PASSWORD = "correct horse battery staple"
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
JANE, BOB = "127.0.0.2", "127.0.0.3"  # two people in front of the proxy


@contextmanager
def served(app) -> Iterator[tuple[str, int]]:
    """The app on a free loopback port (werkzeug's threaded server)."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ("127.0.0.1", server.server_port)
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture
def behind_proxy(settings, sender_for, clock, tmp_path):
    """behind_proxy(hops, page_rate_limit) -> (app, sender headers, proxy): the app
    on emptied tables, with a staff account "alice", served behind the proxy."""
    with ExitStack() as stack:

        def build(hops: int, page_rate_limit: str = "1000 per minute"):
            configured = replace(
                settings,
                trusted_proxy_hops=hops,
                links=LinkSettings(page_rate_limit=page_rate_limit),
            )
            client, sender = sender_for(configured)
            app = client.application
            session = app.extensions["suppression"].sessions()
            create_staff_user(session, "alice", "staff", PASSWORD, clock())
            session.commit()
            session.close()
            upstream = stack.enter_context(served(app))
            proxy = stack.enter_context(reverse_proxy(upstream, tmp_path))
            return app, sender, proxy

        yield build


def unsubscribe_path(client: Client, sender: dict[str, str], email: str) -> str:
    answer = client.post(
        "/v1/unsubscribe-links",
        json_body=json.dumps({"email": email}).encode(),
        headers=sender,
    )
    assert answer.status == 200, answer.text
    return urlsplit(json.loads(answer.text)["url"]).path


def sign_in(client: Client, password: str = PASSWORD) -> int:
    page = client.get("/admin/sign-in").text
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    answer = client.post(
        "/admin/sign-in", form={"username": "alice", "password": password, "csrf_token": token}
    )
    return answer.status


def test_behind_the_proxy_each_client_has_its_own_page_budget(behind_proxy):
    _app, sender, proxy = behind_proxy(hops=1, page_rate_limit="2 per minute")
    jane, bob = proxy.client(JANE), proxy.client(BOB)
    path = unsubscribe_path(jane, sender, "jane.doe@example.com")
    assert [jane.get(path).status for _ in range(3)] == [200, 200, 429]
    # Jane claiming to be Bob changes nothing: the proxy appends her real address.
    assert jane.get(path, headers={"X-Forwarded-For": BOB}).status == 429
    assert [bob.get(path).status for _ in range(3)] == [200, 200, 429]


def test_without_trusted_hops_everyone_behind_the_proxy_shares_one_budget(behind_proxy):
    _app, sender, proxy = behind_proxy(hops=0, page_rate_limit="2 per minute")
    jane, bob = proxy.client(JANE), proxy.client(BOB)
    path = unsubscribe_path(jane, sender, "jane.doe@example.com")
    assert [jane.get(path).status for _ in range(2)] == [200, 200]
    assert bob.get(path).status == 429


def test_behind_the_proxy_wrong_passwords_pause_only_the_client_that_typed_them(behind_proxy):
    _app, _sender, proxy = behind_proxy(hops=1)
    mallory, alice = proxy.client(JANE), proxy.client(BOB)
    assert [sign_in(mallory, "a guess") for _ in range(5)] == [401] * 5
    assert sign_in(mallory) == 429
    assert sign_in(alice) == 303
    # Over TLS at the proxy (X-Forwarded-Proto), the session cookie is Secure.
    landing = alice.get("/admin/")
    assert landing.status == 200
    set_cookie = " ".join(landing.headers.get_all("Set-Cookie") or [])
    assert "Secure" in set_cookie


def test_behind_the_proxy_evidence_and_the_request_log_name_the_client(behind_proxy, caplog):
    app, sender, proxy = behind_proxy(hops=1)
    jane = proxy.client(JANE)
    path = unsubscribe_path(jane, sender, "jane.doe@example.com")
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        assert jane.post(path, form=ONE_CLICK).status == 200
    fold_one_clicks(app)
    with app.extensions["suppression"].sessions() as session:
        [event] = session.scalars(select(ConsentEvent)).all()
    assert (event.source, event.ip) == ("one_click", JANE)
    lines = [r.getMessage() for r in caplog.records if r.name == "werkzeug"]
    assert any(line.startswith(f"{JANE} - - ") and "POST /u/" in line for line in lines), lines


def test_behind_the_proxy_api_evidence_and_the_access_log_name_the_client(behind_proxy):
    app, _sender, proxy = behind_proxy(hops=1)
    desk = api_key(app, "staff", "desk")
    bob = proxy.client(BOB)
    change = {
        "email": "jane.doe@example.com",
        "purpose": "email_marketing",
        "status": "opted_out",
        "source": "phone",
    }
    answer = bob.post("/v1/consents", json_body=json.dumps(change).encode(), headers=desk)
    assert answer.status == 201, answer.text
    lookup = {"email": "jane.doe@example.com", "reason": "ticket 7"}
    answer = bob.post("/v1/subjects/lookup", json_body=json.dumps(lookup).encode(), headers=desk)
    assert answer.status == 200, answer.text
    with app.extensions["suppression"].sessions() as session:
        [event] = session.scalars(select(ConsentEvent)).all()
        [entry] = session.scalars(select(AccessLogEntry)).all()
    assert (event.source, event.ip) == ("phone", BOB)
    assert (entry.reason, entry.ip) == ("ticket 7", BOB)


@pytest.mark.slow
@pytest.mark.parametrize(("hops", "logged"), [(1, JANE), (0, "127.0.0.1")])
def test_behind_the_proxy_gunicorns_access_log_names_the_client(
    database_url, key_env, tmp_path, hops, logged
):
    """The production server: gunicorn serving the app (TRUSTED_PROXY_HOPS from the
    environment), its access log's first field, behind the proxy."""
    access_log = tmp_path / "access.log"
    listener = socket.create_server(("127.0.0.1", 0))
    environ = {
        **os.environ,
        **key_env,
        "DATABASE_URL": database_url,
        "SUPPRESSION_INSTANCE": str(tmp_path / "instance"),
        "TRUSTED_PROXY_HOPS": str(hops),
    }
    gunicorn = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"fd://{listener.fileno()}",
            "--workers",
            "1",
            "--access-logfile",
            str(access_log),
            "suppression.app:create_app()",
        ],
        cwd=tmp_path,  # no gunicorn.conf.py of the project: only what is given here
        env=environ,
        pass_fds=[listener.fileno()],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        upstream = listener.getsockname()
        with reverse_proxy(upstream, tmp_path) as proxy:
            answer = proxy.client(JANE).get("/healthz")
            assert answer.status == 200
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and "/healthz" not in _read(access_log):
                time.sleep(0.05)
        [line] = [line for line in _read(access_log).splitlines() if "/healthz" in line]
        assert line.split(" ")[0] == logged
    finally:
        gunicorn.terminate()
        gunicorn.wait(timeout=30)
        listener.close()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
