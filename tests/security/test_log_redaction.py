"""The log lines that quote a request hold no link token, API key or address:
Flask's "Exception on <path>" before a 500 (traceback included), Werkzeug's
request lines, and (tests/security/test_slow_clients.py) gunicorn's access log."""

from __future__ import annotations

import logging
import sys
import threading
import urllib.request
from urllib.parse import urlsplit

import pytest
from log_guard import find_addresses, find_secrets, rendered
from werkzeug.serving import make_server

from suppression.observability.logs import JsonFormatter
from suppression.observability.redaction import RedactingFilter, redact
from suppression.worker import one_click_intake

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
TOKEN = "AgEBx9-_" + "k" * 58
KEY = "sk_" + "Z" * 43


def mint(client, sender, email: str) -> str:
    answer = client.post("/v1/unsubscribe-links", json={"email": email}, headers=sender)
    assert answer.status_code == 200
    return urlsplit(answer.get_json()["url"]).path


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (f'"POST /u/{TOKEN} HTTP/1.1" 200', '"POST /u/[token] HTTP/1.1" 200'),
        (f"GET /preferences/{TOKEN}?x=1", "GET /preferences/[token]?x=1"),
        ("POST /confirm/short-cut-token", "POST /confirm/[token]"),
        (f"token {TOKEN} seen", "token [token] seen"),
        (f"Authorization: Bearer {KEY}", "Authorization: Bearer sk_[key]"),
        ("GET /jane.doe@example.com HTTP/1.1", "GET /j***@example.com HTTP/1.1"),
        ("GET /healthz HTTP/1.1 200", "GET /healthz HTTP/1.1 200"),
    ],
)
def test_redact_leaves_the_kind_of_a_link_and_nothing_of_a_credential(line, expected):
    assert redact(line) == expected


def test_the_filter_rewrites_message_and_traceback_before_any_handler():
    try:
        raise ValueError(f"no such link /u/{TOKEN} for jane@example.com")
    except ValueError:
        record = logging.LogRecord(
            "gunicorn.error",
            logging.ERROR,
            __file__,
            1,
            "Error handling %s",
            (f"/u/{TOKEN}",),
            sys.exc_info(),
        )
    RedactingFilter().filter(record)
    text = rendered(record)
    assert find_secrets(text) == []
    assert find_addresses(text) == []
    assert "Error handling /u/[token]" in text
    assert "ValueError: no such link /u/[token] for j***@example.com" in text
    # The production JSON lines print the redacted traceback too.
    assert TOKEN not in JsonFormatter().format(record)


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_500_on_a_link_is_logged_without_its_token(app, client, sender, monkeypatch, caplog):
    """Flask logs "Exception on <path> [POST]" with the traceback before a 500."""
    path = mint(client, sender, "jane.doe@example.com")
    token = path.rsplit("/", 1)[1]
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a served app's 500, not a test's raise

    def fail(*_args, **_kwargs):
        raise RuntimeError("the intake failed")

    monkeypatch.setattr(one_click_intake, "accept_one_clicks", fail)
    caplog.set_level(logging.ERROR)
    assert client.post(path, data=ONE_CLICK).status_code == 500
    [logged] = [r for r in caplog.records if r.getMessage().startswith("Exception on")]
    assert logged.name == app.logger.name
    assert logged.getMessage() == "Exception on /u/[token] [POST]"
    text = "\n".join(rendered(record) for record in caplog.records)
    assert "RuntimeError: the intake failed" in text
    assert token not in text
    assert find_secrets(text) == []


def test_werkzeug_request_lines_hold_no_token(app, client, sender, caplog):
    path = mint(client, sender, "jane.doe@example.com")
    token = path.rsplit("/", 1)[1]
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    caplog.set_level(logging.INFO, logger="werkzeug")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}{path}") as page:
            assert page.status == 200
    finally:
        server.shutdown()
        thread.join()
    lines = [rendered(r) for r in caplog.records if r.name == "werkzeug"]
    assert any("GET /u/[token] HTTP/1.1" in line for line in lines), lines
    assert not any(token in line for line in lines)
