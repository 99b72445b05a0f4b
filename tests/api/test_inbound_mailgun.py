"""POST /v1/inbound/mailgun: Mailgun's webhooks, signed the way Mailgun signs
them (hex HMAC-SHA256 of timestamp + token with the webhook signing key) with a
test key, turn permanent failures, complaints and unsubscribes into blocks and
opt-outs; a forged or stale signature, or a token re-used with another event,
records nothing; the same delivery again is a duplicate.

Payloads follow Mailgun's webhook payload examples:
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads
and the signature, "Securing Webhooks":
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import replace
from datetime import timedelta

import pytest
from feedback_events import recorded, webhook_count

from suppression.config.feedback import FeedbackSettings

PATH = "/v1/inbound/mailgun"
SIGNING_KEY = "key-" + secrets.token_hex(16)
EVENT_TIME = 1795951200.375624  # 2026-11-29 11:20 UTC


def failed(severity="permanent", reason="bounce", **fields) -> dict:
    """A `failed` event as Mailgun's payload page shows it."""
    return {
        "event": "failed",
        "id": "G9Bn5sl1TC6nu79C8C0bwg",
        "timestamp": EVENT_TIME,
        "log-level": "error",
        "severity": severity,
        "reason": reason,
        "envelope": {
            "sender": "bob@sample.mailgun.com",
            "transport": "smtp",
            "targets": "alice@example.com",
        },
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "recipient": "alice@example.com",
        "recipient-domain": "example.com",
        "message": {
            "headers": {
                "to": "Alice <alice@example.com>",
                "message-id": "20130503192659.13651.20287@sample.mailgun.com",
                "from": "Bob <bob@sample.mailgun.com>",
                "subject": "Test permanent_fail webhook",
            },
            "attachments": [],
            "size": 111,
        },
        "delivery-status": {
            "attempt-no": 1,
            "message": "",
            "code": 550,
            "description": "5.1.1 The email account that you tried to reach does not exist",
            "session-seconds": 0.0,
        },
        "tags": ["newsletter"],
        "campaigns": [],
        "user-variables": {},
        **fields,
    }


def list_event(event: str, event_id: str, recipient: str) -> dict:
    """A `complained` or `unsubscribed` event as Mailgun's payload page shows it."""
    return {
        "event": event,
        "id": event_id,
        "timestamp": EVENT_TIME,
        "log-level": "warn" if event == "complained" else "info",
        "recipient": recipient,
        "recipient-domain": "example.com",
        "tags": [],
        "campaigns": [],
        "user-variables": {},
        "message": {"headers": {"message-id": "20130503182626.18666.16540@sample.mailgun.com"}},
    }


def signature_block(stamp: str, token: str | None = None, key: str = SIGNING_KEY) -> dict:
    token = token or secrets.token_hex(25)  # Mailgun's tokens are 50 characters
    digest = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    return {"timestamp": stamp, "token": token, "signature": digest}


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), feedback=FeedbackSettings(mailgun_signing_key=SIGNING_KEY))


@pytest.fixture
def now(clock) -> str:
    return str(int(clock().timestamp()))


def post(client, signature: dict, event: dict):
    body = {"signature": signature, "event-data": event}
    return client.post(PATH, data=json.dumps(body), content_type="application/json")


def test_a_permanent_failure_is_a_hard_bounce_with_mailgun_s_evidence(client, session, vault, now):
    response = post(client, signature_block(now), failed())
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
        "mailgun",
        "alice@example.com",
    )
    assert event["occurred_at"].replace(tzinfo=None).isoformat().startswith("2026-11-29T11:20:00")
    evidence = event["evidence"]
    assert evidence["platform_event_id"] == "G9Bn5sl1TC6nu79C8C0bwg@1795951200"
    assert evidence["platform_event_type"] == "failed"
    assert (evidence["severity"], evidence["reason"], evidence["smtp_code"]) == (
        "permanent",
        "bounce",
        "550",
    )
    assert evidence["diagnostic"].startswith("5.1.1")
    assert evidence["message_id"] == "20130503192659.13651.20287@sample.mailgun.com"


@pytest.mark.parametrize(
    ("event", "action", "purpose"),
    [
        (
            list_event("complained", "-Agny091SquKnsrW2NEKUA", "carol@example.com"),
            "complaint",
            None,
        ),
        (
            list_event("unsubscribed", "W3X4JOhFT-OZidZGKKr9iA", "carol@example.com"),
            "opted_out",
            "all",
        ),
        (failed(reason="suppress-unsubscribe", recipient="carol@example.com"), "opted_out", "all"),
        (failed(reason="suppress-complaint", recipient="carol@example.com"), "complaint", None),
    ],
)
def test_complaints_and_unsubscribes_are_recorded_as_such(
    client, session, vault, now, event, action, purpose
):
    assert post(client, signature_block(now), event).get_json()["recorded"] == 1
    [found] = recorded(session, vault)
    assert (found["action"], found["purpose"], found["address"]) == (
        action,
        purpose,
        "carol@example.com",
    )


@pytest.mark.parametrize(
    "event",
    [
        failed(severity="temporary", reason="generic"),
        {**list_event("delivered", "hK7mQVt1QtqRiOfQXta4sw", "alice@example.com")},
        {**list_event("opened", "Ase7i2zsRYeDXztHGENqRA", "alice@example.com")},
    ],
)
def test_temporary_failures_and_engagement_are_ignored(client, session, vault, now, event):
    response = post(client, signature_block(now), event)
    assert response.status_code == 200
    assert response.get_json()["ignored"] == 1
    assert recorded(session, vault) == []


def test_a_forged_signature_records_nothing_and_answers_401(client, session, vault, now, admin):
    genuine = signature_block(now)
    before = webhook_count("mailgun", "refused")
    for forged in (
        signature_block(now, key="key-someone-else"),
        {**genuine, "token": secrets.token_hex(25)},  # another token under the signature
        {**genuine, "timestamp": str(int(now) - 1)},
        {**genuine, "signature": "0" * 64},
        {"timestamp": now, "token": genuine["token"]},  # no signature at all
    ):
        response = post(client, forged, failed())
        assert response.status_code == 401, forged
        assert response.get_json()["message"].startswith("Refused: ")
    unsigned = client.post(PATH, json={"event-data": failed()}, headers=admin)
    assert unsigned.status_code == 401  # an API key is no substitute
    assert recorded(session, vault) == []
    assert webhook_count("mailgun", "refused") == before + 6


def test_a_subaccount_s_parent_signature_verifies_with_the_parent_s_key(
    client, session, vault, now
):
    subaccount = signature_block(now, key="key-of-the-subaccount")
    parent = signature_block(now, token=subaccount["token"])["signature"]
    response = post(client, {**subaccount, "parent-signature": parent}, failed())
    assert response.get_json()["recorded"] == 1


def test_a_stale_signature_is_refused(client, session, vault, clock):
    stale = str(int((clock() - timedelta(seconds=301)).timestamp()))
    response = post(client, signature_block(stale), failed())
    assert response.status_code == 401
    assert "at most 300 s" in response.get_json()["message"]
    assert recorded(session, vault) == []


def test_a_token_re_used_with_another_event_is_refused(client, session, vault, now):
    signature = signature_block(now)
    assert post(client, signature, failed()).get_json()["recorded"] == 1
    other = list_event("unsubscribed", "W3X4JOhFT-OZidZGKKr9iA", "victim@example.com")
    response = post(client, signature, other)
    assert response.status_code == 401
    assert "token was used before" in response.get_json()["message"]
    assert [event["address"] for event in recorded(session, vault)] == ["alice@example.com"]


def test_the_same_delivery_again_is_a_duplicate_even_hours_later(
    client, session, vault, clock, now
):
    """Mailgun's retry of a delivery whose answer it did not get carries the same
    signature: it changes nothing, and is answered 200 so that Mailgun stops."""
    signature = signature_block(now)
    assert post(client, signature, failed()).get_json()["recorded"] == 1
    again = post(client, signature, failed())
    assert again.status_code == 200
    assert again.get_json()["duplicate"] == 1
    clock.advance(hours=2)
    later = post(client, signature, failed())
    assert later.status_code == 200
    assert later.get_json()["duplicate"] == 1
    assert len(recorded(session, vault)) == 1


def test_the_same_event_signed_anew_is_a_duplicate(client, session, vault, now):
    assert post(client, signature_block(now), failed()).get_json()["recorded"] == 1
    response = post(client, signature_block(now), failed())
    assert response.get_json()["duplicate"] == 1
    assert len(recorded(session, vault)) == 1


def test_the_same_event_id_on_another_day_is_another_event(client, session, vault, now):
    """Mailgun's event ids are unique within a day only."""
    assert post(client, signature_block(now), failed()).get_json()["recorded"] == 1
    next_day = failed(timestamp=EVENT_TIME + 86400)
    assert post(client, signature_block(now), next_day).get_json()["recorded"] == 1


def test_bad_bodies_answer_400_or_401_and_record_nothing(client, session, vault, now):
    not_json = client.post(PATH, data=b'{"signature": ', content_type="application/json")
    assert not_json.status_code == 400
    assert "not JSON" in not_json.get_json()["message"]
    no_event = client.post(PATH, json={"signature": signature_block(now)})
    assert no_event.status_code == 400
    assert "no event-data" in no_event.get_json()["message"]
    without_id = {key: value for key, value in failed().items() if key != "id"}
    response = post(client, signature_block(now), without_id)
    assert response.status_code == 400
    assert "no usable event id" in response.get_json()["message"]
    assert client.post(PATH, json=[1, 2]).status_code == 401
    assert recorded(session, vault) == []


def test_a_body_over_1_mib_is_413(client, now):
    padded = failed(**{"user-variables": {"padding": "x" * (1024 * 1024)}})
    assert post(client, signature_block(now), padded).status_code == 413


def test_the_webhook_is_off_until_its_key_is_set(make_settings, app_on_same_database, now):
    client = app_on_same_database(make_settings()).test_client()
    response = post(client, signature_block(now), failed())
    assert response.status_code == 404
    assert "MAILGUN_WEBHOOK_SIGNING_KEY" in response.get_json()["message"]
