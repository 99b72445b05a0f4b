"""POST /v1/inbound/postmark: Postmark's webhooks, authenticated the way Postmark
authenticates them (basic-auth credentials from the webhook URL), turn hard
bounces, spam complaints and suppressions into blocks and opt-outs; wrong
credentials record nothing; a repeat is a duplicate.

Payloads follow Postmark's webhook pages:
https://postmarkapp.com/developer/webhooks/bounce-webhook
https://postmarkapp.com/developer/webhooks/spam-complaint-webhook
https://postmarkapp.com/developer/webhooks/subscription-change-webhook
and the credentials, "Protecting your webhook":
https://postmarkapp.com/developer/webhooks/webhooks-overview
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from feedback_events import recorded, webhook_count

from suppression.config.feedback import FeedbackSettings

PATH = "/v1/inbound/postmark"
USER, PASSWORD = "postmark", "c0rrect horse battery staple"

BOUNCE = {
    "RecordType": "Bounce",
    "MessageStream": "outbound",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "Name": "Hard bounce",
    "Tag": "Test",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 23,
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox "
    "not found).",
    "Details": "Test bounce details",
    "Email": "john@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": True,
    "Subject": "Test subject",
    "Content": "Return-Path: <>\r\nReceived: ... (the full dump of the bounce)",
}
SPAM_COMPLAINT = {
    "RecordType": "SpamComplaint",
    "MessageStream": "outbound",
    "ID": 42,
    "Type": "SpamComplaint",
    "TypeCode": 512,
    "Name": "Spam complaint",
    "Tag": "Test",
    "MessageID": "00000000-0000-0000-0000-000000000000",
    "Metadata": {"a_key": "a_value", "b_key": "b_value"},
    "ServerID": 1234,
    "Description": "",
    "Details": "Test spam complaint details",
    "Email": "jane@example.com",
    "From": "sender@example.com",
    "BouncedAt": "2019-11-05T16:33:54.9070259Z",
    "DumpAvailable": True,
    "Inactive": True,
    "CanActivate": False,
    "Subject": "Test subject",
    "Content": "<Abuse report dump>",
}
SUBSCRIPTION_CHANGE = {
    "RecordType": "SubscriptionChange",
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "ServerID": 123456,
    "MessageStream": "outbound",
    "ChangedAt": "2020-02-01T10:53:34.416071Z",
    "Recipient": "bob@example.com",
    "Origin": "Recipient",
    "SuppressSending": True,
    "SuppressionReason": "ManualSuppression",
    "Tag": "my-tag",
    "Metadata": {"example": "value", "example_2": "value"},
}


def basic(user: str = USER, password: str = PASSWORD) -> dict[str, str]:
    """What Postmark sends for https://<user>:<password>@host/v1/inbound/postmark."""
    credentials = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


@pytest.fixture
def settings(make_settings):
    return replace(
        make_settings(),
        feedback=FeedbackSettings(postmark_username=USER, postmark_password=PASSWORD),
    )


def post(client, notification: dict, headers: dict[str, str] | None = None):
    return client.post(
        PATH, data=json.dumps(notification), content_type="application/json", headers=headers
    )


def test_a_hard_bounce_is_recorded_with_postmark_s_id_and_never_its_content(client, session, vault):
    response = post(client, BOUNCE, basic())
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "received": 1,
        "recorded": 1,
        "unchanged": 0,
        "duplicate": 0,
        "ignored": 0,
    }
    [event] = recorded(session, vault)
    assert (event["action"], event["source"], event["address"]) == (
        "hard_bounce",
        "postmark",
        "john@example.com",
    )
    assert event["occurred_at"].replace(tzinfo=None).isoformat() == "2019-11-05T16:33:54.907025"
    evidence = event["evidence"]
    assert evidence["platform_event_id"] == "4323372036854775807"
    assert evidence["platform_event_type"] == "Bounce"
    assert (evidence["bounce_type"], evidence["bounce_type_code"]) == ("HardBounce", "1")
    assert evidence["message_id"] == "883953f4-6105-42a2-a16a-77a8eac79483"
    assert "dump" not in json.dumps(evidence)  # the bounced mail itself is not kept


def test_a_spam_complaint_is_a_complaint(client, session, vault):
    assert post(client, SPAM_COMPLAINT, basic()).get_json()["recorded"] == 1
    [event] = recorded(session, vault)
    assert (event["action"], event["address"]) == ("complaint", "jane@example.com")
    assert event["evidence"]["platform_event_id"] == "42"


@pytest.mark.parametrize(
    ("reason", "action", "purpose"),
    [
        ("ManualSuppression", "opted_out", "all"),
        ("HardBounce", "hard_bounce", None),
        ("SpamComplaint", "complaint", None),
    ],
)
def test_a_suppression_is_recorded_as_what_postmark_suppressed_for(
    client, session, vault, reason, action, purpose
):
    change = {**SUBSCRIPTION_CHANGE, "SuppressionReason": reason}
    assert post(client, change, basic()).get_json()["recorded"] == 1
    [event] = recorded(session, vault)
    assert (event["action"], event["purpose"], event["address"]) == (
        action,
        purpose,
        "bob@example.com",
    )
    evidence = event["evidence"]
    assert evidence["platform_event_id"].startswith("subscription-change:")
    assert "bob" not in evidence["platform_event_id"]
    assert (evidence["suppression_reason"], evidence["origin"]) == (reason, "Recipient")


def test_a_manual_suppression_without_a_message_id_gets_its_own_id_per_recipient(
    client, session, vault
):
    by_customer = {**SUBSCRIPTION_CHANGE, "MessageID": None, "Origin": "Customer"}
    first = post(client, by_customer, basic())
    second = post(client, {**by_customer, "Recipient": "carol@example.com"}, basic())
    again = post(client, by_customer, basic())
    assert [r.get_json()["recorded"] for r in (first, second, again)] == [1, 1, 0]
    assert again.get_json()["duplicate"] == 1
    assert len(recorded(session, vault)) == 2


@pytest.mark.parametrize(
    "notification",
    [
        {**BOUNCE, "Type": "SoftBounce", "TypeCode": 4096},
        {**BOUNCE, "Type": "Transient", "TypeCode": 2},
        {**SUBSCRIPTION_CHANGE, "SuppressSending": False},  # reactivated at Postmark
        {
            "RecordType": "Delivery",
            "ServerID": 23,
            "MessageStream": "outbound",
            "MessageID": "00000000-0000-0000-0000-000000000000",
            "Recipient": "john@example.com",
            "Tag": "welcome-email",
            "DeliveredAt": "2019-11-05T16:33:54.9070259Z",
            "Details": "Test delivery webhook details",
        },
    ],
)
def test_soft_bounces_reactivations_and_deliveries_are_ignored(
    client, session, vault, notification
):
    response = post(client, notification, basic())
    assert response.status_code == 200
    assert response.get_json()["ignored"] == 1
    assert recorded(session, vault) == []


def test_a_repeat_of_the_same_event_is_a_duplicate(client, session, vault):
    assert post(client, BOUNCE, basic()).get_json()["recorded"] == 1
    before = webhook_count("postmark", "duplicate")
    again = post(client, BOUNCE, basic())
    assert again.status_code == 200
    assert again.get_json()["duplicate"] == 1
    assert len(recorded(session, vault)) == 1
    assert webhook_count("postmark", "duplicate") == before + 1


def test_wrong_or_missing_credentials_are_401_with_a_challenge(client, session, vault, admin):
    before = webhook_count("postmark", "refused")
    for headers in (
        None,
        basic(password="wrong"),
        basic(user="someone", password=PASSWORD),
        basic(password=PASSWORD + "x"),
        basic(user="", password=""),
        {"Authorization": "Basic !!not base64"},
        admin,  # an API key is no credential here
    ):
        response = post(client, BOUNCE, headers)
        assert response.status_code == 401, headers
        assert response.headers["WWW-Authenticate"].startswith('Basic realm="postmark feedback"')
        assert response.get_json()["message"].startswith("Refused: ")
    assert recorded(session, vault) == []
    assert webhook_count("postmark", "refused") == before + 7


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "not JSON"),
        (b"[]", "a JSON object"),
        (json.dumps({**BOUNCE, "ID": None}).encode(), "no usable event id"),
        (json.dumps({**SUBSCRIPTION_CHANGE, "ChangedAt": None}).encode(), "no ChangedAt"),
    ],
)
def test_an_authenticated_body_that_is_not_a_notification_is_400(
    client, session, vault, body, says
):
    response = client.post(PATH, data=body, content_type="application/json", headers=basic())
    assert response.status_code == 400
    assert says in response.get_json()["message"]
    assert recorded(session, vault) == []


def test_a_body_over_1_mib_is_413(client):
    padded = {**BOUNCE, "Content": "x" * (1024 * 1024)}
    assert post(client, padded, basic()).status_code == 413


def test_the_webhook_is_off_until_its_credentials_are_set(make_settings, app_on_same_database):
    client = app_on_same_database(make_settings()).test_client()
    response = post(client, BOUNCE, basic())
    assert response.status_code == 404
    assert "POSTMARK_WEBHOOK_USERNAME" in response.get_json()["message"]
