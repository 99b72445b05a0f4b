"""POST /v1/unsubscribe-links: one link or a batch, the headers, and bad input."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from suppression.app.links import read_token
from suppression.domain.tokens import LinkKind
from suppression.store.models import ApiKey, ConsentEvent, Subject

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@example.com"


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), public_base_url=ORIGIN, unsubscribe_mailbox=MAILBOX)


def links(client, headers, body):
    return client.post("/v1/unsubscribe-links", json=body, headers=headers)


@pytest.fixture
def claims_of(app):
    """claims_of(url): what the link's token says, read as the pages read it."""

    def read(url):
        with app.app_context():
            return read_token(urlsplit(url).path.rsplit("/", 1)[1])

    return read


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def token_of(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_one_recipient_gets_a_link_and_ready_headers(client, sender, clock, claims_of, session):
    response = links(client, sender, {"email": " Jane.Doe@Example.COM", "campaign": "nov-news"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["email"] == " Jane.Doe@Example.COM"  # echoed as sent
    assert body["url"].startswith(f"{ORIGIN}/u/")
    assert body["preferences_url"].startswith(f"{ORIGIN}/preferences/")
    # Two tokens: the header's only unsubscribes; the body's opens the preference page.
    assert claims_of(body["url"]).kind == LinkKind.UNSUBSCRIBE
    assert claims_of(body["preferences_url"]).kind == LinkKind.PREFERENCES
    assert body["url"].rsplit("/", 1)[1] != body["preferences_url"].rsplit("/", 1)[1]
    assert body["headers"] == {
        "List-Unsubscribe": (
            f"<{body['url']}>, <mailto:{MAILBOX}?subject=unsubscribe%20{token_of(body['url'])}>"
        ),
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
    for url in (body["url"], body["preferences_url"]):
        claims = claims_of(url)
        assert claims.address == "jane.doe@example.com"
        assert claims.purpose == "email_marketing"
        assert claims.campaign == "nov-news"
        assert claims.issued_at == clock()
        assert claims.minter == sender_key_id(session)


def sender_key_id(session) -> int:
    found = session.scalar(select(ApiKey.id).where(ApiKey.role == "sender"))
    session.rollback()
    return found


def test_the_address_is_not_in_the_link(client, sender):
    body = links(client, sender, {"email": "jane.doe@example.com"}).get_json()
    assert "jane" not in body["url"].lower()
    assert "example.com" not in urlsplit(body["url"]).path


def test_without_a_mailbox_the_header_holds_only_the_https_link(make_settings, sender_for):
    client, headers = sender_for(replace(make_settings(), public_base_url=ORIGIN))
    body = links(client, headers, {"email": "a@example.com"}).get_json()
    assert body["headers"]["List-Unsubscribe"] == f"<{body['url']}>"


def test_a_purpose_and_all_are_carried_in_the_link(client, sender, claims_of):
    for purpose in ("ad_audiences", "all"):
        body = links(client, sender, {"email": "a@example.com", "purpose": purpose}).get_json()
        assert claims_of(body["url"]).purpose == purpose


def test_a_batch_answers_in_input_order_with_per_recipient_purpose_and_campaign(
    client, sender, claims_of
):
    recipients = [
        {"email": "one@example.com"},
        "two@example.com",
        {"email": "three@example.com", "purpose": "ad_audiences", "campaign": "other"},
        {"email": "four@example.com", "campaign": None},
    ]
    response = links(
        client, sender, {"campaign": "batch-default", "purpose": "all", "recipients": recipients}
    )
    assert response.status_code == 200
    answered = response.get_json()["links"]
    assert [link["email"] for link in answered] == [
        "one@example.com",
        "two@example.com",
        "three@example.com",
        "four@example.com",
    ]
    claims = [claims_of(link["url"]) for link in answered]
    assert [c.purpose for c in claims] == ["all", "all", "ad_audiences", "all"]
    assert [c.campaign for c in claims] == ["batch-default", "batch-default", "other", None]


@pytest.mark.slow
def test_a_batch_of_100000_recipients_is_answered_in_one_call(client, sender, claims_of):
    recipients = [{"email": f"user{i}@example.com"} for i in range(100_000)]
    response = links(client, sender, {"campaign": "big", "recipients": recipients})
    assert response.status_code == 200
    answered = response.get_json()["links"]
    assert len(answered) == 100_000
    assert answered[99_999]["email"] == "user99999@example.com"
    assert claims_of(answered[99_999]["url"]).address == "user99999@example.com"
    assert len({link["url"] for link in answered}) == 100_000


def test_minting_stores_nothing(client, sender, session):
    links(client, sender, {"recipients": ["a@example.com", "b@example.com"]})
    assert session.scalar(select(func.count()).select_from(Subject)) == 0
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 0


def test_more_than_100000_recipients_is_refused(client, sender):
    response = links(client, sender, {"recipients": ["a@example.com"] * 100_001})
    assert response.status_code == 422
    assert "recipients" in response.get_json()["errors"]["json"]


def test_bad_recipients_are_named_by_position_and_no_link_is_minted(client, sender):
    recipients = [
        "fine@example.com",
        "not an address",
        {"email": "x@example.com", "purpose": "sms"},
        {"email": "y@example.com", "campaign": "c" * 101},
        {"email": "z@example.com", "colour": "blue"},
        {"purpose": "all"},
        42,
    ]
    response = links(client, sender, {"recipients": recipients})
    assert response.status_code == 422
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    errors = body["errors"]["json"]["recipients"]
    assert set(errors) == {"1", "2", "3", "4", "5", "6"}
    assert "email" in errors["1"]
    assert "purpose" in errors["2"]
    assert "campaign" in errors["3"]
    assert "colour" in errors["4"]
    assert "email" in errors["5"]
    assert "6 recipient(s)" in body["message"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not an address"}, "email"),
        ({"email": "a@example.com", "purpose": "sms"}, "purpose"),
        ({"email": "a@example.com", "campaign": "\u00e9" * 51}, "campaign"),
        ({}, "email"),
        ({"email": "a@example.com", "recipients": ["b@example.com"]}, "email"),
        ({"recipients": []}, "recipients"),
        ({"recipients": "a@example.com"}, "recipients"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(client, sender, body, field):
    response = links(client, sender, body)
    assert response.status_code == 422
    assert field in response.get_json()["errors"]["json"]


def test_links_need_a_sender_or_admin_key(client, staff, admin):
    body = {"email": "a@example.com"}
    assert links(client, {}, body).status_code == 401
    assert links(client, staff, body).status_code == 403
    assert links(client, admin, body).status_code == 200


def test_the_openapi_document_describes_the_endpoint(client):
    document = client.get("/openapi.json").get_json()
    operation = document["paths"]["/v1/unsubscribe-links"]["post"]
    assert operation["security"] == [{"bearerAuth": []}]
    assert "200" in operation["responses"]
