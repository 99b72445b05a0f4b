"""POST /v1/inbound/mail: the mail a client sends to the `List-Unsubscribe` mailto
(RFC 2369), built with the `email` package as Apple Mail builds it, opts the
recipient out (source `mailto`) by its token, or by an authenticated `From`."""

from __future__ import annotations

from dataclasses import replace
from email.message import EmailMessage
from email.policy import SMTP
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from sqlalchemy import select

from suppression.services.consents.evidence import open_evidence
from suppression.store.models import ConsentEvent

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@news.example.org"
JANE = "jane.doe@example.com"
AUTH_PASS = (
    "mx.news.example.org; dkim=pass (2048-bit key) header.d=example.com "
    "header.i=@example.com header.s=s1; spf=pass smtp.mailfrom=example.com; "
    "dmarc=pass (p=reject) header.from=example.com"
)


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), public_base_url=ORIGIN, unsubscribe_mailbox=MAILBOX)


@pytest.fixture
def inbound(make_key) -> dict[str, str]:
    return make_key("inbound")


def mint(client, headers, email=JANE, **fields) -> dict:
    body = {"email": email, **fields}
    response = client.post("/v1/unsubscribe-links", json=body, headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def mailto_of(link: dict) -> str:
    [mailto] = [
        part.strip(" <>")
        for part in link["headers"]["List-Unsubscribe"].split(",")
        if part.strip(" <").startswith("mailto:")
    ]
    return mailto


def mail_from_mailto(mailto: str, sender: str = JANE, **headers: str) -> bytes:
    """What a mail client sends for a mailto: To its address, Subject its `subject`."""
    parts = urlsplit(mailto)
    message = EmailMessage()
    message["From"] = f"Jane Doe <{sender}>"
    message["To"] = unquote(parts.path)
    message["Subject"] = parse_qs(parts.query).get("subject", [""])[0]
    message["Date"] = "Fri, 04 Dec 2026 09:15:00 +0100"
    message["Message-ID"] = "<B2C1E0F4-1A2B@example.com>"
    for name, value in headers.items():
        message[name.replace("_", "-")] = value
    message.set_content("This message will unsubscribe you from the mailing list.\n")
    return message.as_bytes(policy=SMTP)


def post_mail(client, headers, raw: bytes, content_type="message/rfc822"):
    return client.post(
        "/v1/inbound/mail", data=raw, headers={**headers, "Content-Type": content_type}
    )


def events(session) -> list[ConsentEvent]:
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.rollback()
    return found


def evidence(vault, event: ConsentEvent) -> dict:
    return open_evidence(vault, event.evidence_sealed).value


def decision(client, headers, email=JANE, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": [email]}, headers=headers
    )
    result = response.get_json()["results"][0]
    return result["sendable"], result["reason"]


def test_the_mail_apple_mail_sends_from_the_mailto_opts_out(
    client, sender, inbound, session, vault
):
    link = mint(client, sender, campaign="dec-news")
    mailto = mailto_of(link)
    token = link["url"].rsplit("/", 1)[1]
    assert mailto == f"mailto:{MAILBOX}?subject=unsubscribe%20{token}"
    raw = mail_from_mailto(mailto, sender="jane.alias@example.net")
    response = post_mail(client, inbound, raw)
    assert response.status_code == 200
    assert response.get_json() == {
        "outcome": "opted_out",
        "reason": "opted out of email_marketing",
        "matched_by": "token",
    }
    [event] = events(session)
    assert (event.source, event.action, event.actor) == ("mailto", "opted_out", "recipient")
    assert event.campaign == "dec-news"
    assert (event.ip, event.user_agent) == (None, None)
    sealed = evidence(vault, event)
    assert sealed["matched_by"] == "token"
    assert sealed["message_id"] == "<B2C1E0F4-1A2B@example.com>"
    assert sealed["date"] == "Fri, 04 Dec 2026 09:15:00 +0100"
    assert sealed["link_kind"] == "unsubscribe"
    assert sealed["received_by"] == "api_key:inbound-key"
    assert "authentication_results" not in sealed
    assert "unsubscribe you" not in str(sealed)  # the body is never stored
    assert decision(client, sender) == (False, "opted_out")


def test_the_evidence_keeps_the_receiving_servers_authentication_results(
    client, sender, inbound, session, vault
):
    raw = mail_from_mailto(mailto_of(mint(client, sender)), Authentication_Results=AUTH_PASS)
    assert post_mail(client, inbound, raw).get_json()["matched_by"] == "token"
    [event] = events(session)
    assert evidence(vault, event)["authentication_results"] == AUTH_PASS


def test_the_plus_sub_address_carries_the_token(
    sender, inbound, session, settings, app_on_same_database
):
    plus_client = app_on_same_database(
        replace(settings, unsubscribe_mailbox_plus=True)
    ).test_client()
    link = mint(plus_client, sender)
    mailto = mailto_of(link)
    token = link["url"].rsplit("/", 1)[1]
    # base64url is atext: the local part needs no quoting (it is longer than RFC
    # 5321's 64 octets: docs/operating.md says which servers take that).
    assert mailto == f"mailto:unsubscribe+{token}@news.example.org?subject=unsubscribe"
    response = post_mail(plus_client, inbound, mail_from_mailto(mailto))
    assert response.get_json()["outcome"] == "opted_out"
    assert response.get_json()["matched_by"] == "token"
    assert [event.source for event in events(session)] == ["mailto"]


def test_a_delivered_to_sub_address_or_the_body_carries_the_token(client, sender, inbound, session):
    first = mint(client, sender, email="first@example.com")["url"].rsplit("/", 1)[1]
    message = EmailMessage()
    message["From"] = "first@example.com"
    message["To"] = MAILBOX
    message["Delivered-To"] = f"unsubscribe+{first}@news.example.org"
    message["Subject"] = "unsubscribe"
    message.set_content("")
    assert post_mail(client, inbound, bytes(message)).get_json()["outcome"] == "opted_out"

    second = mint(client, sender, email="second@example.com")["url"].rsplit("/", 1)[1]
    message = EmailMessage()
    message["From"] = "someone@elsewhere.example"
    message["To"] = MAILBOX
    message["Subject"] = "please"
    message.set_content(f"Please take me off.\n\nunsubscribe {second}\n")
    assert post_mail(client, inbound, bytes(message)).get_json()["outcome"] == "opted_out"
    assert len(events(session)) == 2
    assert decision(client, sender, "second@example.com") == (False, "opted_out")


def test_a_repeat_of_the_same_mail_changes_nothing(client, sender, inbound, session):
    raw = mail_from_mailto(mailto_of(mint(client, sender)))
    assert post_mail(client, inbound, raw).get_json()["outcome"] == "opted_out"
    for _ in range(2):
        again = post_mail(client, inbound, raw)
        assert again.status_code == 200
        assert again.get_json() == {
            "outcome": "already_opted_out",
            "reason": "the recipient is opted out already",
            "matched_by": "token",
        }
    assert len(events(session)) == 1


@pytest.mark.parametrize(
    ("results", "matched_by"),
    [
        (AUTH_PASS, "dmarc"),
        ("mx.news.example.org; dkim=pass header.d=example.com; dmarc=none", "dkim"),
        ("mx.news.example.org; dkim=pass header.i=@example.com", "dkim"),
        ("mx.news.example.org; dmarc=pass header.from=example.com", "dmarc"),
    ],
)
def test_without_a_token_an_authenticated_from_opts_out_everything(
    client, sender, inbound, session, vault, results, matched_by
):
    raw = mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe", Authentication_Results=results)
    response = post_mail(client, inbound, raw)
    assert response.get_json() == {
        "outcome": "opted_out",
        "reason": "opted out of all",
        "matched_by": matched_by,
    }
    [event] = events(session)
    assert (event.source, event.purpose) == ("mailto", "all")
    assert evidence(vault, event)["authentication_results"] == results
    assert decision(client, sender, purpose="ad_audiences") == (False, "opted_out")


@pytest.mark.parametrize(
    "results",
    [
        None,
        "mx.news.example.org; dkim=fail header.d=example.com; dmarc=fail header.from=example.com",
        "mx.news.example.org; dkim=pass header.d=attacker.example; spf=pass",
        "mx.news.example.org; dmarc=pass header.from=attacker.example",
        "mx.news.example.org; dkim=neutral (pass) header.d=example.com",
    ],
)
def test_an_unauthenticated_from_records_nothing_and_says_why(client, inbound, session, results):
    extra = {"Authentication_Results": results} if results else {}
    raw = mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe", **extra)
    response = post_mail(client, inbound, raw)
    assert response.status_code == 200
    assert response.get_json() == {
        "outcome": "ignored",
        "reason": "the mail carries no unsubscribe token; the From address is not "
        "authenticated (no DMARC or DKIM pass for its domain)",
        "matched_by": None,
    }
    assert events(session) == []


def test_only_the_topmost_authentication_results_count(client, inbound, session):
    message = EmailMessage()
    message["Authentication-Results"] = "mx.news.example.org; dkim=none; dmarc=none"
    # Added by the sender, below the receiving server's own: not believed.
    message["Authentication-Results"] = "mx.news.example.org; dmarc=pass header.from=example.com"
    message["From"] = JANE
    message["To"] = MAILBOX
    message["Subject"] = "unsubscribe"
    message.set_content("")
    assert post_mail(client, inbound, bytes(message)).get_json()["outcome"] == "ignored"
    assert events(session) == []


def test_a_forged_or_expired_token_records_nothing(client, sender, inbound, session, clock):
    token = mint(client, sender)["url"].rsplit("/", 1)[1]
    forged = token[:-6] + ("AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB")
    response = post_mail(
        client, inbound, mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe%20{forged}")
    )
    assert response.get_json()["outcome"] == "ignored"
    assert response.get_json()["reason"].startswith("its token is not valid (forged)")
    clock.advance(days=181)
    expired = mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe%20{token}")
    response = post_mail(client, inbound, expired)
    assert response.get_json()["reason"].startswith("its token is not valid (expired)")
    assert events(session) == []


def test_a_forged_token_with_an_authenticated_from_opts_out_the_sender(
    client, sender, inbound, session
):
    token = mint(client, sender, email="victim@example.org")["url"].rsplit("/", 1)[1]
    forged = token[:-6] + ("AAAAAA" if token[-6:] != "AAAAAA" else "BBBBBB")
    raw = mail_from_mailto(
        f"mailto:{MAILBOX}?subject=unsubscribe%20{forged}", Authentication_Results=AUTH_PASS
    )
    assert post_mail(client, inbound, raw).get_json()["matched_by"] == "dmarc"
    assert decision(client, sender, "victim@example.org") == (True, None)
    assert decision(client, sender) == (False, "opted_out")


@pytest.mark.parametrize(
    ("raw", "content_type", "status"),
    [
        (b"", "message/rfc822", 400),
        (b"   \r\n", "message/rfc822", 400),
        (b"not a mail at all", "message/rfc822", 400),
        (b"From: jane.doe@example.com\r\n\r\nhi", "text/plain", 415),
        (b'{"from": "jane.doe@example.com"}', "application/json", 415),
    ],
)
def test_bad_input_answers_4xx_in_the_error_shape_and_records_nothing(
    client, inbound, session, raw, content_type, status
):
    response = post_mail(client, inbound, raw, content_type)
    assert response.status_code == status
    assert set(response.get_json()) >= {"code", "message"}
    assert events(session) == []


def test_a_mail_over_max_content_length_is_refused(client, inbound, session, app):
    app.config["MAX_CONTENT_LENGTH"] = 1000
    raw = mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe") + b"x" * 2000
    assert post_mail(client, inbound, raw).status_code == 413
    assert events(session) == []


@pytest.mark.parametrize("role", ["sender", "staff"])
def test_other_roles_may_not_post_mail(client, make_key, session, role):
    raw = mail_from_mailto(f"mailto:{MAILBOX}?subject=unsubscribe")
    assert post_mail(client, make_key(role), raw).status_code == 403


def test_an_inbound_key_does_nothing_else(client, inbound):
    check = {"purpose": "email_marketing", "addresses": [JANE]}
    assert client.post("/v1/checks", json=check, headers=inbound).status_code == 403
    assert (
        client.post("/v1/unsubscribe-links", json={"email": JANE}, headers=inbound).status_code
        == 403
    )


def test_an_admin_key_may_post_mail(client, sender, admin, session):
    raw = mail_from_mailto(mailto_of(mint(client, sender)))
    assert post_mail(client, admin, raw).get_json()["outcome"] == "opted_out"
