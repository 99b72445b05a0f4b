"""Who may call what: every /v1 operation by every kind of caller, every staff page
and action by (signed out, staff, admin), and the public token pages.

The tables are checked against the app's url_map: a new endpoint or page without
an entry here fails `test_the_tables_cover_every_route`."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from seeding import api_key
from sqlalchemy import func, select

from suppression.config.feedback import FeedbackSettings
from suppression.services.staff.accounts import create_staff_user
from suppression.services.staff.api_keys import revoke_api_key
from suppression.store.models import ConsentEvent, Subject
from suppression.store.schema import Base

ALLOWED, UNAUTHENTICATED, FORBIDDEN, OFF = "allowed", "401", "403", "404"
# A feedback webhook: public, whatever the key; its own signature or basic auth
# decides. Off (404) until its secret is set, as in the settings here.
WEBHOOK = "webhook"
CALLERS = ["none", "unknown", "revoked", "sender", "staff", "inbound", "admin"]
CSV = {"data": b"email\nmatrix@example.com\n", "content_type": "text/csv"}
EMPTY_JSON = {"json": {}}
MAIL = {"data": b"Subject: unsubscribe\r\n\r\n", "content_type": "message/rfc822"}
MATRIX_TOPIC = "arn:aws:sns:us-east-1:123456789012:matrix"
# An SNS notification of the configured topic whose certificate is not on an SNS
# host: refused before anything is fetched.
SNS_MESSAGE = {
    "data": json.dumps(
        {
            "Type": "Notification",
            "MessageId": "matrix-1",
            "TopicArn": MATRIX_TOPIC,
            "Message": "{}",
            "Timestamp": "2026-01-01T00:00:00.000Z",
            "SignatureVersion": "2",
            "Signature": "AAAA",
            "SigningCertURL": "https://certificates.example/SimpleNotificationService.pem",
        }
    ).encode(),
    "content_type": "text/plain",
    "headers": {"x-amz-sns-message-type": "Notification"},
}

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
    ("POST", "/v1/inbound/mail"): ({"inbound", "admin"}, MAIL),
    ("POST", "/v1/inbound/ses"): (WEBHOOK, SNS_MESSAGE),
    ("POST", "/v1/inbound/sendgrid"): (WEBHOOK, {"json": []}),
    ("POST", "/v1/inbound/mailgun"): (WEBHOOK, EMPTY_JSON),
    ("POST", "/v1/inbound/postmark"): (WEBHOOK, EMPTY_JSON),
}

# Staff pages and actions: (method, rule) -> who may (staff includes admin).
STAFF, ADMIN, OPEN = "staff", "admin", "open"
PAGES = {
    ("GET", "/admin/"): STAFF,
    ("POST", "/admin/search"): STAFF,
    ("GET", "/admin/dashboard"): STAFF,
    ("GET", "/admin/destinations"): STAFF,
    ("GET", "/admin/checks"): STAFF,
    ("POST", "/admin/checks"): STAFF,
    ("GET", "/admin/checks/result"): STAFF,
    ("GET", "/admin/checks/result/<kind>.csv"): STAFF,
    ("GET", "/admin/account"): STAFF,
    ("POST", "/admin/account"): STAFF,
    ("GET", "/admin/subjects/<int:subject_id>"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/opt-out"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/opt-in"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/jurisdiction"): STAFF,
    ("POST", "/admin/subjects/<int:subject_id>/rights-block"): STAFF,
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


def _expected_api(roles: set[str] | str, caller: str) -> str:
    if roles == WEBHOOK:
        return OFF
    if caller in roles:
        return ALLOWED
    if caller in {"none", "unknown", "revoked"}:
        return UNAUTHENTICATED
    return FORBIDDEN


def _open(client, method: str, path: str, key_headers: dict, kwargs: dict):
    """A request with the caller's key beside the request's own headers."""
    request = {**kwargs, "headers": {**kwargs.get("headers", {}), **key_headers}}
    return client.open(path, method=method, **request)


@pytest.fixture
def callers(make_key, session, clock):
    headers = {
        role: make_key(role, f"matrix-{role}") for role in ("sender", "staff", "inbound", "admin")
    }
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
        response = _open(client, method, path, callers[caller], kwargs)
        expected = _expected_api(roles, caller)
        where = (method, path, caller, response.status_code)
        assert response.status_code < 500, where
        if expected == ALLOWED:
            assert response.status_code not in (401, 403), where
        else:
            assert response.status_code == int(expected), where
            assert response.get_json()["code"] == int(expected), where
            assert _counts(session) == before, where  # refused calls store nothing


# Every feedback webhook turned on, with secrets the callers do not have.
WEBHOOKS_ON = FeedbackSettings(
    ses_topic_arns=(MATRIX_TOPIC,),
    sendgrid_public_key=base64.b64encode(
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).decode(),
    mailgun_signing_key="key-matrix",
    postmark_username="postmark",
    postmark_password="matrix password",
)


@pytest.mark.parametrize("caller", CALLERS)
def test_no_api_key_opens_a_feedback_webhook(
    settings, app_on_same_database, callers, caller, session
):
    client = app_on_same_database(replace(settings, feedback=WEBHOOKS_ON)).test_client()
    for (method, rule), (roles, kwargs) in API.items():
        if roles != WEBHOOK:
            continue
        before = _counts(session)
        response = _open(client, method, rule, callers[caller], kwargs)
        assert response.status_code == 401, (rule, caller, response.get_json())
        assert _counts(session) == before


@pytest.fixture
def subject_id(client, callers, session):
    body = {"email": "matrix@example.com", "purpose": "all", "status": "opted_in", "source": "t"}
    assert client.post("/v1/consents", json=body, headers=callers["admin"]).status_code == 201
    found = session.scalar(select(Subject.id))
    session.rollback()
    return found


def _page_path(rule: str, subject_id: int) -> str:
    return (
        rule.replace("<int:subject_id>", str(subject_id))
        .replace("<username>", "nobody")
        .replace("<kind>", "cleaned")
    )


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


# Every write a sender key can make, aimed at an address a person or staff protected
# first: (protection, path, body, answer). A sender may add protection and record
# what it is for (forms, bounces, purchases); it may never undo a protection or make
# the address sendable: that is 403 (a lift is not its to send) or 409 (a conflict
# with what is stored), and a refused write stores nothing. A new kind, status or
# sender endpoint fails `test_the_sender_table_covers_every_sender_write` until it
# has a row here.
CONFLICT = "409"
PROTECTED = "protected@example.com"
DECLARED_DE = {"country": "DE", "country_source": "declared"}


def _consent(status: str, **extra) -> dict:
    return {"email": PROTECTED, "purpose": "all", "status": status, "source": "form", **extra}


def _block(kind: str, **extra) -> dict:
    return {"email": PROTECTED, "kind": kind, **extra}


def _batch(*kinds: str) -> dict:
    return {"events": [_block(kind) for kind in kinds]}


MOVE_TO_US = {"country": "US", "country_source": "declared"}
SENDER_WRITES = [
    ("opted_out", "/v1/consents", _consent("opted_in"), CONFLICT),
    ("complaint", "/v1/consents", _consent("opted_in"), CONFLICT),
    ("erased", "/v1/consents", _consent("opted_in"), CONFLICT),
    ("hashed", "/v1/consents", _consent("opted_in"), CONFLICT),
    ("opted_out", "/v1/consents", _consent("opted_in", evidence={"form": "x"}), CONFLICT),
    ("declared_de", "/v1/consents", _consent("opted_in", **MOVE_TO_US), CONFLICT),
    ("declared_de", "/v1/consents", _consent("opted_out", **MOVE_TO_US), CONFLICT),
    ("declared_de", "/v1/consents", _consent("opted_in", **DECLARED_DE), ALLOWED),
    ("declared_de", "/v1/consents", _consent("opted_in", country="US"), ALLOWED),
    ("restricted", "/v1/consents", _consent("opted_in"), ALLOWED),
    ("objected", "/v1/consents", _consent("opted_in"), ALLOWED),
    ("bounced", "/v1/consents", _consent("opted_in"), ALLOWED),
    ("restricted", "/v1/consents", _consent("opted_out"), ALLOWED),
    ("restricted", "/v1/blocks", _block("lift_restriction"), FORBIDDEN),
    ("restricted", "/v1/blocks", _batch("complaint", "lift_restriction"), FORBIDDEN),
    ("objected", "/v1/blocks", _block("lift_restriction"), FORBIDDEN),
    ("opted_out", "/v1/blocks", _block("hard_bounce"), ALLOWED),
    ("opted_out", "/v1/blocks", _block("complaint"), ALLOWED),
    ("opted_out", "/v1/blocks", _block("restriction"), ALLOWED),
    ("opted_out", "/v1/blocks", _block("objection"), ALLOWED),
    ("declared_de", "/v1/blocks", _block("complaint", country="US"), ALLOWED),
    ("opted_out", "/v1/blocks", _batch("hard_bounce", "objection"), ALLOWED),
    ("opted_out", "/v1/relationships", {"email": PROTECTED, "kind": "purchase"}, ALLOWED),
    ("restricted", "/v1/relationships", {"email": PROTECTED, "kind": "inquiry"}, ALLOWED),
    ("opted_out", "/v1/unsubscribe-links", {"email": PROTECTED, "purpose": "all"}, ALLOWED),
]
# Sender writes that store nothing at all.
READ_ONLY = {"/v1/checks", "/v1/checks.csv"}


def _sender_write_kinds(path: str, body: dict) -> set[tuple[str, str]]:
    """What a row exercises: (path, status or kind or country source)."""
    events = body.get("events", [body])
    kinds = {(path, event.get("status") or event.get("kind") or "link") for event in events}
    if "country" in body:
        kinds.add((path, f"country:{body.get('country_source', 'hint')}"))
    return kinds


def test_the_sender_table_covers_every_sender_write():
    from suppression.api.schemas import BLOCK_KINDS, CONSENT_STATUSES
    from suppression.services.consents.recording import RELATIONSHIP_ACTIONS

    sender_posts = {
        rule
        for (method, rule), (roles, _kwargs) in API.items()
        if method == "POST" and "sender" in roles and roles != WEBHOOK
    }
    assert {path for _p, path, _b, _a in SENDER_WRITES} == sender_posts - READ_ONLY
    covered = set().union(
        *(_sender_write_kinds(path, body) for _p, path, body, _a in SENDER_WRITES)
    )
    assert covered >= {("/v1/consents", status) for status in CONSENT_STATUSES}
    assert covered >= {("/v1/blocks", kind) for kind in BLOCK_KINDS}
    assert covered >= {("/v1/relationships", kind) for kind in RELATIONSHIP_ACTIONS}
    assert covered >= {("/v1/consents", f"country:{source}") for source in ("hint", "declared")}


def _protect(client, callers, protection: str) -> None:
    sender, staff, admin = callers["sender"], callers["staff"], callers["admin"]
    requests = {
        "opted_out": ("/v1/consents", _consent("opted_out", source="email_request"), sender),
        "complaint": ("/v1/blocks", _block("complaint"), sender),
        "bounced": ("/v1/blocks", _block("hard_bounce"), sender),
        "restricted": ("/v1/blocks", _block("restriction", source="dsar"), staff),
        "objected": ("/v1/blocks", _block("objection", source="dsar"), staff),
        "erased": ("/v1/subjects/erase", {"email": PROTECTED, "reason": "request"}, admin),
        "declared_de": (
            "/v1/consents",
            _consent("opted_in", evidence={"ticket": "T-7"}, **DECLARED_DE),
            staff,
        ),
    }
    if protection == "hashed":
        digest = hashlib.sha256(PROTECTED.encode()).hexdigest()
        response = client.post(
            "/v1/imports", data=f"email_sha256\n{digest}\n", content_type="text/csv", headers=admin
        )
        assert response.get_json()["imported"] == 1
        return
    path, body, headers = requests[protection]
    assert client.post(path, json=body, headers=headers).status_code in (200, 201)


def _stored(session) -> dict[str, int]:
    counts = {
        table.name: session.scalar(select(func.count()).select_from(table))
        for table in Base.metadata.sorted_tables
        if table.name not in ("api_keys", "access_log")
    }
    session.rollback()
    return counts


def _decisions(client, headers) -> dict[str, tuple[bool, str | None]]:
    answers = {}
    for purpose in ("email_marketing", "ad_audiences"):
        body = {"purpose": purpose, "addresses": [PROTECTED]}
        [result] = client.post("/v1/checks?detail=all", json=body, headers=headers).get_json()[
            "results"
        ]
        answers[purpose] = (result["sendable"], result["reason"])
    return answers


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
@pytest.mark.parametrize(
    ("protection", "path", "body", "answer"),
    SENDER_WRITES,
    ids=[f"{p}-{path.rsplit('/', 1)[1]}-{i}" for i, (p, path, _b, _a) in enumerate(SENDER_WRITES)],
)
def test_a_sender_never_undoes_a_protection(
    client, callers, session, clock, protection, path, body, answer
):
    _protect(client, callers, protection)
    clock.advance(minutes=1)  # the sender's write comes later than the protection
    before, decided = _stored(session), _decisions(client, callers["admin"])
    assert not any(sendable for sendable, _reason in decided.values())
    response = client.post(path, json=body, headers=callers["sender"])
    where = (protection, path, body, response.status_code, response.get_json())
    if answer == ALLOWED:
        assert response.status_code in (200, 201), where
    else:
        assert response.status_code == int(answer), where
        assert response.get_json()["code"] == int(answer), where
        assert response.get_json()["message"], where
        assert _stored(session) == before, where  # a refused write stores nothing
        assert _decisions(client, callers["admin"]) == decided, where
    after = _decisions(client, callers["admin"])
    assert not any(sendable for sendable, _reason in after.values()), (where, after)
    if protection == "declared_de":
        lookup = client.post(
            "/v1/subjects/lookup", json={"email": PROTECTED}, headers=callers["admin"]
        ).get_json()
        assert (lookup["country"], lookup["country_source"]) == ("DE", "declared"), where


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_with_soft_opt_in_on_a_senders_purchase_still_undoes_no_protection(
    make_settings, sender_for, clock
):
    """A purchase is the lawful basis of soft opt-in where it is enabled: it makes
    a new Canadian customer sendable, and no protected one."""
    client, sender = sender_for(make_settings(SOFT_OPT_IN_COUNTRIES="CA"))
    admin = api_key(client.application, "admin", "matrix-admin")
    digest = hashlib.sha256(b"hashed@example.ca").hexdigest()
    rows = f"email_sha256\n{digest}\n"
    client.post("/v1/imports", data=rows, content_type="text/csv", headers=admin)
    for address, kind in (
        ("complained@example.ca", "complaint"),
        ("bounced@example.ca", "hard_bounce"),
    ):
        client.post("/v1/blocks", json={"email": address, "kind": kind}, headers=sender)
    restricted = {"email": "restricted@example.ca", "kind": "restriction"}
    client.post("/v1/blocks", json=restricted, headers=admin)
    opted_out = {"email": "out@example.ca", "purpose": "all", "status": "opted_out", "source": "x"}
    client.post("/v1/consents", json=opted_out, headers=sender)
    erased = {"email": "erased@example.ca", "reason": "request"}
    client.post("/v1/subjects/erase", json=erased, headers=admin)
    clock.advance(minutes=1)
    protected = ["hashed", "complained", "bounced", "restricted", "out", "erased"]
    addresses = [f"{name}@example.ca" for name in [*protected, "customer"]]
    for address in addresses:
        purchase = {"email": address, "kind": "purchase"}
        assert client.post("/v1/relationships", json=purchase, headers=sender).status_code == 201
    body = {"purpose": "email_marketing", "addresses": addresses}
    results = client.post("/v1/checks?detail=all", json=body, headers=sender).get_json()
    assert [(r["sendable"], r["reason"]) for r in results["results"]] == [
        (False, "opted_out"),
        (False, "complained"),
        (False, "bounced"),
        (False, "restricted"),
        (False, "opted_out"),
        (False, "erased"),
        (True, None),
    ]
