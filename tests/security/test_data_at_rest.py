"""What a copy of the database gives away: after a mixed workload through the API
and the pages, the dump holds no address, no unsubscribe token, no API key secret
and no staff password, in any of the forms they were sent in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import replace

from sqlalchemy import select

from suppression.config.feedback import FeedbackSettings
from suppression.services.consents.audit import verify_chain
from suppression.services.staff.accounts import create_staff_user
from suppression.store.models import ConsentEvent, PurgeRun

ADDRESSES = {
    "consent": "Consent.Person@Example.com",
    "block": "bounced.person@example.org",
    "import": "imported.person@example.net",
    "link": "linked.person@example.co.uk",
    "erased": "erased.person@example.com",
    "staff_search": "searched.person@example.com",
    "relationship": "customer.person@example.com",
    # Only ever inside free evidence (a reply quoted with an opt-out, a bounce).
    "evidence": "Quoted.Sender@Example.org",
    "bounce_evidence": "postmaster@example.net",
}
STAFF_PASSWORD = "a staff passphrase nobody else knows"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _workload(app, client, sender, staff, admin, clock) -> list[str]:
    """Everything the service is asked to do with addresses; returns the secrets
    that passed through it besides the addresses (tokens)."""
    a = ADDRESSES
    consent = {"purpose": "all", "status": "opted_out", "source": "email_request"}
    reply = {"note": "asked by mail", "reply": {"from": a["evidence"], "cc": [a["evidence"]]}}
    for name in ("consent", "erased", "staff_search"):
        body = {**consent, "email": a[name], "evidence": reply}
        assert client.post("/v1/consents", json=body, headers=sender).status_code == 201
    block = {
        "email": a["block"],
        "kind": "hard_bounce",
        "evidence": {"dsn": f"550 5.1.1 <{a['block']}>: no such user", "by": a["bounce_evidence"]},
    }
    assert client.post("/v1/blocks", json=block, headers=sender).status_code == 201
    relationship = {"email": a["relationship"], "kind": "purchase"}
    assert client.post("/v1/relationships", json=relationship, headers=sender).status_code == 201
    csv = f"email,status\n{a['import']},opted_out\nnot-an-address,opted_out\n".encode()
    response = client.post("/v1/imports", data=csv, content_type="text/csv", headers=admin)
    assert response.status_code == 200
    assert response.get_json()["imported"] == 1
    check = {"purpose": "email_marketing", "addresses": list(a.values())}
    assert client.post("/v1/checks", json=check, headers=sender).status_code == 200

    minted = client.post(
        "/v1/unsubscribe-links",
        json={"email": a["link"], "campaign": "rest-test"},
        headers=sender,
    ).get_json()
    token = minted["url"].rsplit("/", 1)[1]
    one_click = client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    preferences = minted["preferences_url"].rsplit("/", 1)[1]
    assert client.get(f"/preferences/{preferences}").status_code == 200

    lookup = {"email": a["consent"], "reason": "ticket 42"}
    assert client.post("/v1/subjects/lookup", json=lookup, headers=staff).status_code == 200
    export = {"email": a["consent"], "reason": "DSAR 1"}
    assert client.post("/v1/subjects/export", json=export, headers=admin).status_code == 200
    erase = {"email": a["erased"], "reason": "request"}
    assert client.post("/v1/subjects/erase", json=erase, headers=admin).status_code == 200

    session = app.extensions["suppression"].sessions()
    create_staff_user(session, "rest-staff", "staff", STAFF_PASSWORD, clock())
    session.commit()
    session.close()
    pages = app.test_client()
    csrf = CSRF.search(pages.get("/admin/sign-in").get_data(as_text=True)).group(1)
    signed_in = pages.post(
        "/admin/sign-in",
        data={"username": "rest-staff", "password": STAFF_PASSWORD, "csrf_token": csrf},
    )
    assert signed_in.status_code == 303
    csrf = CSRF.search(pages.get("/admin/").get_data(as_text=True)).group(1)
    found = pages.post("/admin/search", data={"email": a["staff_search"], "csrf_token": csrf})
    assert found.status_code == 303
    return [token, preferences]


def _forms(text: str) -> set[bytes]:
    """A secret as bytes in the encodings a database might hold it."""
    forms = set()
    for variant in {text, text.lower(), text.strip().lower()}:
        forms.add(variant.encode())
        forms.add(variant.encode("utf-16-le"))
    return forms


def test_a_database_dump_holds_no_address_token_key_or_password(app, client, make_key, clock, dump):
    sender = make_key("sender", "rest-sender")
    staff = make_key("staff", "rest-staff-key")
    admin = make_key("admin", "rest-admin")
    tokens = _workload(app, client, sender, staff, admin, clock)
    key_secrets = [h["Authorization"].split(" ", 1)[1] for h in (sender, staff, admin)]

    data = dump()
    assert b"consent_events" in data or len(data) > 10_000  # the dump is real
    secrets = {
        **{f"address {name}": value for name, value in ADDRESSES.items()},
        **{f"token {i}": value for i, value in enumerate(tokens)},
        **{f"api key {i}": value for i, value in enumerate(key_secrets)},
        "staff password": STAFF_PASSWORD,
    }
    leaked = [name for name, value in secrets.items() if any(f in data for f in _forms(value))]
    assert leaked == []


def test_feedback_webhooks_leave_no_address_in_a_dump(settings, app_on_same_database, clock, dump):
    """A platform's event quotes the address in its diagnostic, and a Postmark
    suppression's derived id is made from it: neither reaches the dump."""
    signing_key = "key-at-rest"
    feedback = FeedbackSettings(
        mailgun_signing_key=signing_key, postmark_username="pm", postmark_password="at rest"
    )
    client = app_on_same_database(replace(settings, feedback=feedback)).test_client()
    bounced, suppressed = "Webhook.Bounced@Example.org", "webhook.suppressed@example.net"
    stamp, token = str(int(clock().timestamp())), "t" * 50
    mailgun = {
        "signature": {
            "timestamp": stamp,
            "token": token,
            "signature": hmac.new(
                signing_key.encode(), (stamp + token).encode(), hashlib.sha256
            ).hexdigest(),
        },
        "event-data": {
            "event": "failed",
            "severity": "permanent",
            "id": "rest-1",
            "timestamp": clock().timestamp(),
            "recipient": bounced,
            "delivery-status": {"code": 550, "description": f"550 5.1.1 <{bounced}>: unknown"},
        },
    }
    assert client.post("/v1/inbound/mailgun", json=mailgun).get_json()["recorded"] == 1
    postmark = {
        "RecordType": "SubscriptionChange",
        "MessageID": None,
        "ChangedAt": "2026-11-29T11:59:00.123456Z",
        "Recipient": suppressed,
        "Origin": "Customer",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    auth = {"Authorization": "Basic " + base64.b64encode(b"pm:at rest").decode()}
    response = client.post("/v1/inbound/postmark", json=postmark, headers=auth)
    assert response.get_json()["recorded"] == 1
    data = dump()
    assert [a for a in (bounced, suppressed) if any(f in data for f in _forms(a))] == []


def test_the_dump_check_would_see_a_plaintext_address(app, session, clock, dump):
    # A canary: the same search finds an address that was stored in clear.
    session.add(PurgeRun(started_at=clock(), rule=ADDRESSES["consent"], dry_run=True, counts={}))
    session.commit()
    assert any(form in dump() for form in _forms(ADDRESSES["consent"]))


def _with_sealing_keys(settings, keys: dict[int, bytes]):
    return replace(
        settings,
        keys=replace(settings.keys, sealing_keys=keys, sealing_key_current=max(keys)),
    )


def test_evidence_sealed_under_an_old_key_opens_after_rotation(
    client, make_key, settings, session, app_on_same_database
):
    sender, staff = make_key("sender"), make_key("staff")
    old, new = settings.keys.sealing_keys[1], b"n" * 32
    body = {"email": "jane@example.com", "purpose": "all", "source": "form"}
    first = {**body, "status": "opted_in", "evidence": {"reply": "jane@example.com said yes"}}
    assert client.post("/v1/consents", json=first, headers=sender).status_code == 201

    rotated = app_on_same_database(_with_sealing_keys(settings, {1: old, 2: new}))
    second = {**body, "status": "opted_out", "evidence": {"reply": "jane@example.com: stop"}}
    answer = rotated.test_client().post("/v1/consents", json=second, headers=sender)
    assert answer.status_code == 201
    heads = session.scalars(
        select(ConsentEvent.evidence_sealed).order_by(ConsentEvent.chain_seq)
    ).all()
    session.rollback()
    assert [int.from_bytes(sealed[:2], "big") for sealed in heads] == [1, 2]
    lookup = rotated.test_client().post(
        "/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=staff
    )
    assert [e["evidence"] for e in lookup.json["events"]] == [
        {"reply": "jane@example.com: stop"},
        {"reply": "jane@example.com said yes"},
    ]
    assert verify_chain(session, rotated.extensions["suppression"].vault).intact
    session.rollback()

    # Key 1 dropped too early: its evidence is reported unreadable, never a 500,
    # and the audit names the link it can no longer check.
    dropped = app_on_same_database(_with_sealing_keys(settings, {2: new}))
    lookup = dropped.test_client().post(
        "/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=staff
    )
    assert lookup.status_code == 200
    older = lookup.json["events"][1]
    assert (older["evidence"], older["evidence_unreadable"]) == (None, True)
    assert lookup.json["events"][0]["evidence"] == {"reply": "jane@example.com: stop"}
    export = dropped.test_client().post(
        "/v1/subjects/export", json={"email": "jane@example.com"}, headers=staff
    )
    assert export.json["events"][0]["evidence_unreadable"] is True
    report = verify_chain(session, dropped.extensions["suppression"].vault)
    session.rollback()
    assert report.first_break.seq == 1
    assert "no held key" in report.first_break.problem
