"""The client's address behind reverse proxies (TRUSTED_PROXY_HOPS), with the
forwarded headers sent through the test client: what rate limits, the sign-in
throttle, event evidence and the access log take as the client.
tests/web/test_behind_a_proxy.py shows the same through a real proxy hop."""

from __future__ import annotations

import secrets
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from seeding import api_key, fold_one_clicks
from sqlalchemy import select

from suppression.config.settings import LinkSettings
from suppression.services.staff.accounts import create_staff_user
from suppression.store.models import AccessLogEntry, ConsentEvent

PASSWORD = "correct horse battery staple"
PROXY = {"REMOTE_ADDR": "10.0.0.2"}  # the socket's peer: the proxy in front
ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def build(settings, sender_for, clock):
    """build(hops, page_rate_limit) -> (app, client, {role: headers}), on emptied
    tables, with a staff account "alice"."""

    def make(hops: int, page_rate_limit: str = "1000 per minute"):
        configured = replace(
            settings, trusted_proxy_hops=hops, links=LinkSettings(page_rate_limit=page_rate_limit)
        )
        client, sender = sender_for(configured)
        app = client.application
        admin = api_key(app, "admin")
        session = app.extensions["suppression"].sessions()
        create_staff_user(session, "alice", "staff", PASSWORD, clock())
        session.commit()
        session.close()
        return app, client, {"sender": sender, "admin": admin}

    return make


def forwarded(value: str) -> dict[str, str]:
    return {"X-Forwarded-For": value}


def one_click_ip(app, client, keys, headers: dict[str, str]) -> str:
    """The IP stored as evidence of a one-click (for a new address) sent with these
    headers."""
    email = f"person-{secrets.token_hex(4)}@example.com"
    minted = client.post(
        "/v1/unsubscribe-links", json={"email": email}, headers=keys["sender"]
    ).get_json()
    response = client.post(
        urlsplit(minted["url"]).path, data=ONE_CLICK, headers=headers, environ_base=PROXY
    )
    assert response.status_code == 200
    fold_one_clicks(app)
    return last_event(app).ip


def last_event(app) -> ConsentEvent:
    session = app.extensions["suppression"].sessions()
    try:
        return session.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    finally:
        session.close()


def page_answers(client, headers_per_request: list[dict[str, str]]) -> list[int]:
    return [
        client.get("/u/not-a-token", headers=headers, environ_base=PROXY).status_code
        for headers in headers_per_request
    ]


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_without_trusted_proxies_a_forged_forwarded_for_is_ignored(build):
    app, client, keys = build(hops=0, page_rate_limit="2 per minute")
    # A fresh made-up address on every request buys no fresh budget.
    forged = [forwarded(f"198.51.100.{n}") for n in range(3)]
    assert page_answers(client, forged) == [400, 400, 429]
    app, client, keys = build(hops=0)
    assert one_click_ip(app, client, keys, forwarded("198.51.100.7")) == "10.0.0.2"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_with_one_trusted_proxy_the_forwarded_address_is_the_client(build):
    app, client, keys = build(hops=1, page_rate_limit="2 per minute")
    jane, bob = forwarded("198.51.100.7"), forwarded("203.0.113.9")
    assert page_answers(client, [jane, jane, jane]) == [400, 400, 429]
    assert page_answers(client, [bob, bob, bob]) == [400, 400, 429]
    app, client, keys = build(hops=1)
    assert one_click_ip(app, client, keys, jane) == "198.51.100.7"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_with_one_trusted_proxy_of_two_forwarded_addresses_the_rightmost_is_the_client(build):
    app, client, keys = build(hops=1, page_rate_limit="2 per minute")
    # The client wrote the first; the proxy appended the address it was reached from.
    spoofs = [forwarded(f"192.0.2.{n}, 198.51.100.7") for n in range(3)]
    assert page_answers(client, spoofs) == [400, 400, 429]
    app, client, keys = build(hops=1)
    ip = one_click_ip(app, client, keys, forwarded("192.0.2.66, 198.51.100.7"))
    assert ip == "198.51.100.7"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_with_two_trusted_proxies_the_second_from_the_right_is_the_client(build):
    app, client, keys = build(hops=2)
    chain = forwarded("192.0.2.66, 198.51.100.7, 10.0.0.1")
    assert one_click_ip(app, client, keys, chain) == "198.51.100.7"
    # Fewer addresses than proxies: the headers did not come through the proxies.
    assert one_click_ip(app, client, keys, forwarded("198.51.100.8")) == "10.0.0.2"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
@pytest.mark.parametrize(
    "value",
    ["not-an-address", "198.51.100.7:4711", "fe80::1%" + "x" * 60, "\u0661.2.3.4", "' OR 1=1"],
)
def test_a_forwarded_value_that_is_no_address_leaves_the_peer_as_the_client(build, value):
    app, client, keys = build(hops=1)
    assert one_click_ip(app, client, keys, forwarded(value)) == "10.0.0.2"


def test_api_evidence_and_the_access_log_name_the_forwarded_client(build):
    app, client, keys = build(hops=1)
    headers = {**keys["admin"], **forwarded("192.0.2.66, 198.51.100.7")}
    body = {
        "email": "jane.doe@example.com",
        "purpose": "email_marketing",
        "status": "opted_out",
        "source": "email_request",
    }
    response = client.post("/v1/consents", json=body, headers=headers, environ_base=PROXY)
    assert response.status_code == 201
    assert last_event(app).ip == "198.51.100.7"
    lookup = client.post(
        "/v1/subjects/lookup",
        json={"email": "jane.doe@example.com"},
        headers=headers,
        environ_base=PROXY,
    )
    assert lookup.status_code == 200
    assert lookup.get_json()["events"][0]["ip"] == "198.51.100.7"
    session = app.extensions["suppression"].sessions()
    [entry] = session.scalars(select(AccessLogEntry)).all()
    session.close()
    assert entry.ip == "198.51.100.7"


def sign_in(client, headers, password=PASSWORD):
    page = client.get("/admin/sign-in", headers=headers, environ_base=PROXY)
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    return client.post(
        "/admin/sign-in",
        data={"username": "alice", "password": password, "csrf_token": token},
        headers=headers,
        environ_base=PROXY,
    )


def test_wrong_passwords_behind_the_proxy_pause_only_the_address_they_came_from(build):
    app, _client, _keys = build(hops=1)
    attacker, alice = app.test_client(), app.test_client()
    for _ in range(5):
        assert sign_in(attacker, forwarded("192.0.2.66"), "a guess").status_code == 401
    assert sign_in(attacker, forwarded("192.0.2.66")).status_code == 429
    # The attacker's own claim to be Alice's address is the first of two values.
    assert sign_in(attacker, forwarded("198.51.100.7, 192.0.2.66")).status_code == 429
    assert sign_in(alice, forwarded("198.51.100.7")).status_code == 303


def test_the_proxys_forwarded_proto_marks_the_staff_cookie_secure(build):
    https = {"X-Forwarded-Proto": "https"}
    _app, client, _keys = build(hops=1)
    assert "Secure" in sign_in(client, https).headers["Set-Cookie"]
    _app, client, _keys = build(hops=0)
    assert "Secure" not in sign_in(client, https).headers["Set-Cookie"]
    # Only http and https are schemes: anything else leaves the socket's own.
    _app, client, _keys = build(hops=1)
    assert (
        "Secure" not in sign_in(client, {"X-Forwarded-Proto": "javascript"}).headers["Set-Cookie"]
    )
