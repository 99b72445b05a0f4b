"""Who may call what: every /v1 operation by every kind of caller, every staff page
and action by (signed out, staff, admin), and the public token pages.

The tables are checked against the app's url_map: a new endpoint or page without
an entry here fails `test_the_tables_cover_every_route`."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from suppression.models import ConsentEvent, Subject
from suppression.services.api_keys import revoke_api_key
from suppression.services.staff import create_staff_user

ALLOWED, UNAUTHENTICATED, FORBIDDEN = "allowed", "401", "403"
CALLERS = ["none", "unknown", "revoked", "sender", "staff", "admin"]
CSV = {"data": b"email\nmatrix@example.com\n", "content_type": "text/csv"}
EMPTY_JSON = {"json": {}}

# (method, rule) -> (roles allowed, request keyword arguments). Bodies are empty or
# minimal: an allowed caller gets a 2xx or a validation 4xx, never 401/403/5xx.
API = {
    ("POST", "/v1/consents"): ({"sender", "staff", "admin"}, EMPTY_JSON),
    ("POST", "/v1/blocks"): ({"sender", "staff", "admin"}, EMPTY_JSON),
    ("POST", "/v1/relationships"): ({"sender", "staff", "admin"}, EMPTY_JSON),
    ("POST", "/v1/checks"): ({"sender", "admin"}, EMPTY_JSON),
    ("POST", "/v1/checks.csv"): ({"sender", "admin"}, CSV),
    ("POST", "/v1/subjects/lookup"): ({"staff", "admin"}, EMPTY_JSON),
    ("GET", "/v1/access-log"): ({"admin"}, {}),
    ("POST", "/v1/subjects/export"): ({"staff", "admin"}, EMPTY_JSON),
    ("POST", "/v1/subjects/erase"): ({"admin"}, EMPTY_JSON),
    ("POST", "/v1/imports"): ({"admin"}, CSV),
    ("GET", "/v1/suppressions.csv"): ({"admin"}, {}),
    ("POST", "/v1/unsubscribe-links"): ({"sender", "admin"}, EMPTY_JSON),
    ("GET", "/v1/destinations"): ({"admin"}, {}),
    ("POST", "/v1/destinations/<string:name>/sync"): ({"admin"}, {}),
}

# Staff pages and actions: (method, rule) -> who may (staff includes admin).
STAFF, ADMIN, OPEN = "staff", "admin", "open"
PAGES = {
    ("GET", "/admin/"): STAFF,
    ("POST", "/admin/search"): STAFF,
    ("GET", "/admin/dashboard"): STAFF,
    ("GET", "/admin/destinations"): STAFF,
    ("GET", "/admin/account"): STAFF,
    ("POST", "/admin/account"): STAFF,
    ("GET", "/admin/subjects/<int:subject_id>"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/opt-out"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/opt-in"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/jurisdiction"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/export"): STAFF,
    ("POST", "/admin/subjects/opt-out"): STAFF,
    ("POST", "/admin/sign-out"): STAFF,
    ("GET", "/admin/access-log"): ADMIN,
    ("GET", "/admin/accounts"): ADMIN,
    ("POST", "/admin/accounts"): ADMIN,
    ("POST", "/admin/accounts/<username>/disable"): ADMIN,
    ("POST", "/admin/accounts/<username>/enable"): ADMIN,
    ("POST", "/admin/destinations/retry"): ADMIN,
    ("POST", "/admin/subjects/<int:subject_id>/erase"): ADMIN,
    ("GET", "/admin/sign-in"): OPEN,
    ("POST", "/admin/sign-in"): OPEN,
}
PASSWORD = "matrix passphrase, long enough"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _routes(app, prefix: str) -> set[tuple[str, str]]:
    return {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix)
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }


def test_the_tables_cover_every_route(app):
    assert _routes(app, "/v1/") == set(API)
    assert _routes(app, "/admin") == set(PAGES)
    documented = app.test_client().get("/openapi.json").get_json()["paths"]
    assert {path for path in documented if path.startswith("/v1/")} == {
        rule.replace("<string:name>", "{name}") for _method, rule in API
    }


def _expected_api(roles: set[str], caller: str) -> str:
    if caller in {"none", "unknown", "revoked"}:
        return UNAUTHENTICATED
    return ALLOWED if caller in roles else FORBIDDEN


@pytest.fixture
def callers(make_key, session, clock):
    headers = {role: make_key(role, f"matrix-{role}") for role in ("sender", "staff", "admin")}
    headers["revoked"] = make_key("admin", "matrix-revoked")
    revoke_api_key(session, "matrix-revoked", clock())
    session.commit()
    headers["unknown"] = {"Authorization": "Bearer sk_" + "A" * 43}
    headers["none"] = {}
    return headers


def _counts(session) -> tuple[int, int]:
    counts = (
        session.scalar(select(func.count(Subject.id))),
        session.scalar(select(func.count(ConsentEvent.id))),
    )
    session.rollback()
    return counts


@pytest.mark.parametrize("caller", CALLERS)
def test_every_api_operation_answers_each_caller_as_the_table_says(
    client, callers, caller, session
):
    for (method, rule), (roles, kwargs) in API.items():
        path = rule.replace("<string:name>", "meta")
        before = _counts(session)
        response = client.open(path, method=method, headers=callers[caller], **kwargs)
        expected = _expected_api(roles, caller)
        where = (method, path, caller, response.status_code)
        assert response.status_code < 500, where
        if expected == ALLOWED:
            assert response.status_code not in (401, 403), where
        else:
            assert response.status_code == int(expected), where
            assert response.get_json()["code"] == int(expected), where
            assert _counts(session) == before, where  # refused calls store nothing


@pytest.fixture
def subject_id(client, callers, session):
    body = {"email": "matrix@example.com", "purpose": "all", "status": "opted_in", "source": "t"}
    assert client.post("/v1/consents", json=body, headers=callers["admin"]).status_code == 201
    found = session.scalar(select(Subject.id))
    session.rollback()
    return found


def _page_path(rule: str, subject_id: int) -> str:
    return rule.replace("<int:subject_id>", str(subject_id)).replace("<username>", "nobody")


def _signed_in(app, clock, role: str):
    session = app.extensions["suppression"].sessions()
    create_staff_user(session, f"matrix-{role}", role, PASSWORD, clock())
    session.commit()
    session.close()
    client = app.test_client()
    token = CSRF.search(client.get("/admin/sign-in").get_data(as_text=True)).group(1)
    response = client.post(
        "/admin/sign-in",
        data={"username": f"matrix-{role}", "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    return client, CSRF.search(client.get("/admin/").get_data(as_text=True)).group(1)


def test_signed_out_every_staff_page_and_action_goes_to_sign_in(client, subject_id):
    for (method, rule), need in PAGES.items():
        path = _page_path(rule, subject_id)
        response = client.open(path, method=method, data={})
        if need == OPEN:
            # The sign-in page itself: shown, or its form refused without a CSRF token.
            assert response.status_code in (200, 400), (method, path)
            continue
        assert response.status_code == 303, (method, path)
        assert response.headers["Location"].startswith("/admin/sign-in"), (method, path)


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_signed_in_staff_and_admins_get_what_the_table_says(app, clock, subject_id, role):
    client, token = _signed_in(app, clock, role)
    # Signing out last: it ends the session the other rows use.
    rows = sorted(PAGES.items(), key=lambda row: row[0][1] == "/admin/sign-out")
    for (method, rule), need in rows:
        path = _page_path(rule, subject_id)
        data = {"csrf_token": token} if method == "POST" else None
        response = client.open(path, method=method, data=data)
        where = (role, method, path, response.status_code)
        assert response.status_code < 500, where
        if need == OPEN:
            continue  # sign-in answers a form without credentials on its own terms
        if need == ADMIN and role == "staff":
            assert response.status_code == 403, where
            assert response.mimetype == "text/html", where
        else:
            assert response.status_code not in (401, 403), where


def test_a_staff_post_without_the_csrf_token_is_refused(app, clock, subject_id):
    client, _token = _signed_in(app, clock, "admin")
    response = client.post(f"/admin/subjects/{subject_id}/opt-out", data={"purpose": "all"})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "token",
    ["x", "A" * 59, "AQEB" + "_" * 80, "%00", "%C3%28%FF", "AQEB" + "-" * 2000],
)
@pytest.mark.parametrize("page", ["/u/", "/preferences/", "/confirm/"])
def test_public_pages_refuse_a_bad_token_with_400_and_record_nothing(client, session, page, token):
    before = _counts(session)
    for method in ("GET", "POST"):
        response = client.open(
            page + token, method=method, data={"List-Unsubscribe": "One-Click", "action": "save"}
        )
        assert response.status_code == 400, (method, page, token)
        assert response.mimetype == "text/html"
    assert _counts(session) == before


@pytest.mark.parametrize(("page", "link"), [("/u/", "url"), ("/preferences/", "preferences_url")])
def test_public_pages_accept_a_minted_token(client, callers, page, link):
    minted = client.post(
        "/v1/unsubscribe-links", json={"email": "matrix@example.com"}, headers=callers["sender"]
    ).get_json()
    token = minted[link].rsplit("/", 1)[1]
    assert client.get(page + token).status_code == 200


def test_each_token_opens_only_what_its_kind_allows(client, callers, session):
    """The header's token only unsubscribes; a link token is no confirmation."""
    minted = client.post(
        "/v1/unsubscribe-links", json={"email": "matrix@example.com"}, headers=callers["sender"]
    ).get_json()
    unsubscribe = minted["url"].rsplit("/", 1)[1]
    preferences = minted["preferences_url"].rsplit("/", 1)[1]
    before = _counts(session)
    assert client.get(f"/preferences/{unsubscribe}").status_code == 303  # to /u/
    save = {"action": "save", "shown": "email_marketing", "receive": "email_marketing"}
    assert client.post(f"/preferences/{unsubscribe}", data=save).status_code == 400
    for token in (unsubscribe, preferences):
        assert client.get(f"/confirm/{token}").status_code == 400
        assert client.post(f"/confirm/{token}").status_code == 400
    assert client.get(f"/u/{preferences}").status_code == 200
    assert _counts(session) == before


@pytest.mark.parametrize("subject", ["999999", "99999999999999999999"])
def test_a_subject_id_that_does_not_exist_is_a_404_page(app, clock, subject):
    client, token = _signed_in(app, clock, "admin")
    assert client.get(f"/admin/subjects/{subject}").status_code == 404
    response = client.post(f"/admin/subjects/{subject}/opt-out", data={"csrf_token": token})
    assert response.status_code == 404
    assert response.mimetype == "text/html"
