"""What a copy of the database gives away: after a mixed workload through the API
and the pages, the dump holds no address, no unsubscribe token, no API key secret
and no staff password, in any of the forms they were sent in."""

from __future__ import annotations

import re

from suppression.models import PurgeRun
from suppression.services.staff import create_staff_user

ADDRESSES = {
    "consent": "Consent.Person@Example.com",
    "block": "bounced.person@example.org",
    "import": "imported.person@example.net",
    "link": "linked.person@example.co.uk",
    "erased": "erased.person@example.com",
    "staff_search": "searched.person@example.com",
    "relationship": "customer.person@example.com",
}
STAFF_PASSWORD = "a staff passphrase nobody else knows"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _workload(app, client, sender, staff, admin, clock) -> list[str]:
    """Everything the service is asked to do with addresses; returns the secrets
    that passed through it besides the addresses (tokens)."""
    a = ADDRESSES
    consent = {"purpose": "all", "status": "opted_out", "source": "email_request"}
    for name in ("consent", "erased", "staff_search"):
        body = {**consent, "email": a[name], "evidence": {"note": "asked by mail"}}
        assert client.post("/v1/consents", json=body, headers=sender).status_code == 201
    block = {"email": a["block"], "kind": "hard_bounce"}
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


def test_the_dump_check_would_see_a_plaintext_address(app, session, clock, dump):
    # A canary: the same search finds an address that was stored in clear.
    session.add(PurgeRun(started_at=clock(), rule=ADDRESSES["consent"], dry_run=True, counts={}))
    session.commit()
    assert any(form in dump() for form in _forms(ADDRESSES["consent"]))
