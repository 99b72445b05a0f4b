"""Staff sign-in: secure session cookies, CSRF on every form, throttling, sign-out."""

import re

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from suppression import create_app
from suppression.cli.main import main
from suppression.services.staff import accounts
from suppression.store.models import ConsentEvent, SignInAttempt, StaffUser

PASSWORD = "correct horse battery staple"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def post_sign_in(client, csrf_from, username="alice", password=PASSWORD, **extra):
    token = csrf_from(client.get("/admin/sign-in"))
    data = {"username": username, "password": password, "csrf_token": token, **extra}
    return client.post("/admin/sign-in", data=data)


def test_every_staff_page_sends_a_stranger_to_sign_in(client):
    for path in ("/admin/", "/admin/dashboard", "/admin/subjects/1", "/admin/access-log"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["Location"].startswith("/admin/sign-in?next=")


def test_the_sign_in_page_has_a_form_and_security_headers(client):
    response = client.get("/admin/sign-in")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'autocomplete="current-password"' in html
    assert 'name="csrf_token"' in html
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"


def test_signing_in_sets_an_httponly_samesite_cookie_and_returns_to_the_page_asked_for(
    client, make_staff_user, csrf_from
):
    make_staff_user("alice")
    response = post_sign_in(client, csrf_from, username="Alice", next="/admin/dashboard")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/dashboard"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("staff=")
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP on loopback in development
    assert client.get("/admin/dashboard").status_code == 200


def test_the_cookie_is_secure_over_https(client, make_staff_user, csrf_from):
    make_staff_user("alice")
    token = csrf_from(client.get("/admin/sign-in", base_url="https://localhost"))
    response = client.post(
        "/admin/sign-in",
        base_url="https://localhost",
        data={"username": "alice", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    assert "Secure" in response.headers["Set-Cookie"]


def test_with_secure_cookies_configured_the_cookie_is_host_only_and_secure(settings, clock):
    from dataclasses import replace

    app = create_app(replace(settings, session_cookie_secure=True), clock=clock)
    try:
        client = app.test_client()
        response = client.get("/admin/sign-in", base_url="https://localhost")
        cookie = response.headers["Set-Cookie"]
        assert cookie.startswith("__Host-staff=")
        assert "Secure" in cookie
        assert "Path=/" in cookie
        assert "Domain" not in cookie
    finally:
        app.extensions["suppression"].engine.dispose()


def test_a_wrong_password_is_refused_without_saying_which_part_was_wrong(
    client, make_staff_user, csrf_from
):
    make_staff_user("alice")
    wrong = post_sign_in(client, csrf_from, password="not the password")
    unknown = post_sign_in(client, csrf_from, username="mallory")
    assert wrong.status_code == unknown.status_code == 401
    assert b"Unknown username or wrong password" in wrong.data
    assert b"Unknown username or wrong password" in unknown.data
    assert client.get("/admin/").status_code == 303


def test_repeated_failures_pause_sign_in_with_a_clear_message(client, make_staff_user, csrf_from):
    make_staff_user("alice")
    for _ in range(5):
        assert post_sign_in(client, csrf_from, password="guess").status_code == 401
    response = post_sign_in(client, csrf_from)  # even the right password
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed sign-ins for this account from your address" in html
    assert "from elsewhere it works as usual" in html
    assert "try again in 15 minutes" in html
    assert client.get("/admin/").status_code == 303


def test_a_strangers_wrong_passwords_do_not_lock_the_account_owner_out(
    app, make_staff_user, csrf_from
):
    make_staff_user("alice")
    stranger, owner = app.test_client(), app.test_client()
    stranger.environ_base["REMOTE_ADDR"] = "192.0.2.66"
    owner.environ_base["REMOTE_ADDR"] = "198.51.100.7"
    for _ in range(5):
        assert post_sign_in(stranger, csrf_from, password="guess").status_code == 401
    assert post_sign_in(stranger, csrf_from).status_code == 429
    assert post_sign_in(owner, csrf_from).status_code == 303
    assert owner.get("/admin/").status_code == 200


@pytest.mark.slow
def test_failures_for_many_accounts_pause_the_address_and_say_so(
    client, make_staff_user, csrf_from
):
    make_staff_user("alice")
    for n in range(20):
        post_sign_in(client, csrf_from, username=f"guess{n}", password="guess")
    response = post_sign_in(client, csrf_from)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "Too many failed sign-ins from your address" in html
    assert "paused for every account" in html


def test_an_attack_from_many_addresses_pauses_the_account_everywhere_and_says_so(
    app, client, make_staff_user, csrf_from, clock
):
    make_staff_user("alice")
    session = app.extensions["suppression"].sessions()
    session.add_all(
        SignInAttempt(username="alice", ip=f"10.0.{n}.1", succeeded=False, attempted_at=clock())
        for n in range(accounts.MAX_FAILURES_PER_ACCOUNT)
    )
    session.commit()
    session.close()
    response = post_sign_in(client, csrf_from)
    assert response.status_code == 429
    html = response.get_data(as_text=True)
    assert "from many addresses" in html
    assert "paused everywhere" in html
    assert "ask an admin to reset your password" in html


def test_the_throttle_lifts_after_the_window(client, make_staff_user, csrf_from, clock):
    make_staff_user("alice")
    for _ in range(5):
        post_sign_in(client, csrf_from, password="guess")
    clock.advance(minutes=16)
    assert post_sign_in(client, csrf_from).status_code == 303


def test_sign_out_ends_the_session(sign_in, csrf_from):
    client, token = sign_in()
    response = client.post("/admin/sign-out", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/sign-in"
    assert b"You are signed out" in client.get("/admin/sign-in").data
    assert client.get("/admin/").status_code == 303


def _captured(client) -> str:
    """The session cookie as someone who captured it keeps it (a shared machine, a
    proxy log, malware): replayed as it is, whatever the server answers later."""
    return client.get_cookie("staff").value


def _replay(app, cookie: str, path: str = "/admin/"):
    thief = app.test_client()
    thief.set_cookie("staff", cookie)
    return thief.get(path)


@pytest.fixture
def cli_env(database_url, tmp_path, monkeypatch):
    """The operator's shell: `suppression staff ...` against the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path / "cli-instance"))
    monkeypatch.delenv("SUPPRESSION_ENV", raising=False)
    return CliRunner()


def test_a_cookie_captured_before_sign_out_no_longer_opens_the_pages(sign_in, app):
    client, token = sign_in("alice")
    cookie = _captured(client)
    assert _replay(app, cookie).status_code == 200
    assert client.post("/admin/sign-out", data={"csrf_token": token}).status_code == 303
    response = _replay(app, cookie)
    assert response.status_code == 303
    assert response.headers["Location"].startswith("/admin/sign-in")
    assert _replay(app, cookie, "/admin/dashboard").status_code == 303


def test_sign_out_ends_the_accounts_sessions_on_every_device(sign_in, app, csrf_from):
    client, token = sign_in("alice")
    laptop = app.test_client()
    post_sign_in(laptop, csrf_from)
    assert laptop.get("/admin/").status_code == 200
    client.post("/admin/sign-out", data={"csrf_token": token})
    assert laptop.get("/admin/").status_code == 303
    assert post_sign_in(laptop, csrf_from).status_code == 303  # signing in again works
    assert laptop.get("/admin/").status_code == 200


def test_a_cookie_captured_before_a_password_change_stops_and_the_new_session_works(sign_in, app):
    client, token = sign_in("alice")
    cookie = _captured(client)
    response = client.post(
        "/admin/account",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert response.status_code == 303
    assert _replay(app, cookie).status_code == 303
    # The person's own new session goes on, and its forms work.
    page = client.get("/admin/")
    assert page.status_code == 200
    fresh = CSRF_FIELD.search(page.get_data(as_text=True)).group(1)
    search = client.post("/admin/search", data={"email": "x@example.com", "csrf_token": fresh})
    assert search.status_code == 404  # not found: the search ran


@pytest.mark.committed  # a command: its own engine
def test_a_cookie_captured_before_the_cli_sets_a_password_stops_working(sign_in, app, cli_env):
    client, _token = sign_in("alice")
    cookie = _captured(client)
    result = cli_env.invoke(
        main, ["staff", "password", "alice", "--password-stdin"], input="a brand new passphrase"
    )
    assert result.exit_code == 0, result.output
    assert _replay(app, cookie).status_code == 303


def test_a_cookie_captured_before_an_admin_disables_the_account_stays_dead_after_enable(
    sign_in, app, make_staff_user, csrf_from
):
    bob, _token = sign_in("bob")
    cookie = _captured(bob)
    make_staff_user("ada", role="admin")
    admin = app.test_client()
    post_sign_in(admin, csrf_from, username="ada")
    token = csrf_from(admin.get("/admin/accounts"))
    assert admin.post("/admin/accounts/bob/disable", data={"csrf_token": token}).status_code == 303
    assert _replay(app, cookie).status_code == 303
    assert admin.post("/admin/accounts/bob/enable", data={"csrf_token": token}).status_code == 303
    assert _replay(app, cookie).status_code == 303


@pytest.mark.committed  # a command: its own engine
def test_a_cookie_captured_before_the_cli_disables_the_account_stays_dead_after_enable(
    sign_in, app, cli_env
):
    client, _token = sign_in("bob")
    cookie = _captured(client)
    assert cli_env.invoke(main, ["staff", "disable", "bob"]).exit_code == 0
    assert cli_env.invoke(main, ["staff", "enable", "bob"]).exit_code == 0
    assert _replay(app, cookie).status_code == 303


def test_sign_out_is_a_post_only(sign_in):
    client, _token = sign_in()
    assert client.get("/admin/sign-out").status_code == 405
    assert client.get("/admin/").status_code == 200


def test_a_session_ends_after_the_configured_hours(sign_in, clock):
    client, _token = sign_in()
    clock.advance(hours=7, minutes=59)
    assert client.get("/admin/").status_code == 200
    clock.advance(minutes=2)
    assert client.get("/admin/").status_code == 303


def test_a_disabled_account_is_signed_out_at_once(sign_in, app, clock):
    client, _token = sign_in("bob")
    session = app.extensions["suppression"].sessions()
    accounts.set_disabled(session, "bob", True, clock())
    session.commit()
    session.close()
    assert client.get("/admin/").status_code == 303


def test_a_password_change_ends_the_other_sessions(sign_in, app, client, csrf_from):
    other = app.test_client()
    _client, token = sign_in("alice")
    token2 = csrf_from(other.get("/admin/sign-in"))
    other.post(
        "/admin/sign-in", data={"username": "alice", "password": PASSWORD, "csrf_token": token2}
    )
    assert other.get("/admin/").status_code == 200
    response = client.post(
        "/admin/account",
        data={
            "csrf_token": token,
            "current_password": PASSWORD,
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert response.status_code == 303
    assert client.get("/admin/").status_code == 200  # this session goes on
    assert other.get("/admin/").status_code == 303  # the other one ended


def test_a_password_change_needs_the_current_password(sign_in):
    client, token = sign_in("alice")
    response = client.post(
        "/admin/account",
        data={
            "csrf_token": token,
            "current_password": "wrong",
            "new_password": "a brand new passphrase",
            "confirm_password": "a brand new passphrase",
        },
    )
    assert response.status_code == 422
    assert b"This is not your current password" in response.data


def test_sign_in_never_redirects_to_another_site(app, make_staff_user, csrf_from):
    make_staff_user("alice")
    for target in ("https://evil.example/", "//evil.example/admin/", "/v1/checks"):
        response = post_sign_in(app.test_client(), csrf_from, next=target)
        assert response.headers["Location"] == "/admin/"


def test_a_form_without_its_csrf_token_is_rejected(sign_in, session):
    client, token = sign_in("alice")
    forms = {
        "/admin/search": {"email": "jane@example.com"},
        "/admin/subjects/opt-out": {
            "email": "jane@example.com",
            "purpose": "all",
            "channel": "email_request",
            "reason": "asked",
        },
        "/admin/sign-out": {},
        "/admin/account": {"current_password": PASSWORD},
    }
    for path, data in forms.items():
        for bad in ({}, {"csrf_token": "forged"}, {"csrf_token": token[:-1]}):
            response = client.post(path, data={**data, **bad})
            assert response.status_code == 400, path
            assert b"This form has expired" in response.data
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0
    assert client.get("/admin/").status_code == 200  # still signed in: sign-out was refused


def test_the_sign_in_form_itself_needs_its_csrf_token(client, make_staff_user):
    make_staff_user("alice")
    response = client.post("/admin/sign-in", data={"username": "alice", "password": PASSWORD})
    assert response.status_code == 400
    assert client.get("/admin/").status_code == 303


def test_a_token_from_another_session_is_rejected(sign_in, app, csrf_from):
    client, _token = sign_in("alice")
    stranger = app.test_client()
    foreign = csrf_from(stranger.get("/admin/sign-in"))
    response = client.post("/admin/search", data={"email": "a@example.com", "csrf_token": foreign})
    assert response.status_code == 400


def test_the_public_one_click_path_is_not_behind_the_staff_csrf_check(client):
    response = client.post("/u/not-a-token", data={"List-Unsubscribe": "One-Click"})
    assert response.status_code != 303
    assert b"This form has expired" not in response.data


def test_accounts_hold_no_plaintext_password(make_staff_user, session, dump):
    make_staff_user("alice")
    user = session.scalars(select(StaffUser)).one()
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD.encode() not in dump()
