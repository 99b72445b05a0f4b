"""POST /v1/inbound/sendgrid: SendGrid's Event Webhook, signed the way SendGrid
signs it (ECDSA P-256, SHA-256, over the timestamp header then the raw body) with
a test key, turns bounces, spam reports and unsubscribes into blocks and
opt-outs; a forged, stale or unsigned request records nothing.

Payloads follow the Event Webhook reference's examples:
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
and the signing, the Signed Event Webhook page:
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
"""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from feedback_events import recorded, webhook_count

from suppression.config.feedback import FeedbackSettings

PATH = "/v1/inbound/sendgrid"
SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"
SIGNING_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


def verification_key(private_key) -> str:
    """The public key as SendGrid's Mail Settings page shows it: base64 DER SPKI."""
    der = private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def _common(email: str, event: str, event_id: str) -> dict:
    return {
        "email": email,
        "timestamp": 1795951200,  # 2026-11-29 11:20 UTC
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "event": event,
        "category": "cat facts",
        "sg_event_id": event_id,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
    }


BATCH = [
    _common("processed@example.com", "processed", "2FeCcG5VRWpck6mKqRgnDg=="),
    {
        **_common("delivered@example.com", "delivered", "hqFbp3HH9WxIM0R2-x2M1Q=="),
        "response": "250 OK",
    },
    {
        **_common("bounced@example.com", "bounce", "6g4ZI7SA-xmRDv57GoPIPw=="),
        "reason": "500 unknown recipient",
        "status": "5.0.0",
        "type": "bounce",
        "bounce_classification": "Invalid Address",
    },
    {
        **_common("blocked@example.com", "bounce", "qK1MxfAaE_ukyyNsjxTpkw=="),
        "reason": "550 5.7.1 blocked for reputation",
        "status": "5.7.1",
        "type": "blocked",
    },
    _common("complainer@example.com", "spamreport", "37nvH5QBz858KGVYCM4uOA=="),
    _common("leaver@example.com", "unsubscribe", "zmzJhfJgAfUSOW80yEbPyw=="),
    {
        **_common("grouped@example.com", "group_unsubscribe", "vZL1Dhx34srS-HkO-gTXBLg=="),
        "useragent": "Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322)",
        "ip": "255.255.255.255",
        "url": "http://www.sendgrid.com/",
        "asm_group_id": 10,
    },
]


def signed(body: bytes, timestamp: str, key=SIGNING_KEY) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: timestamp}


@pytest.fixture
def settings(make_settings):
    return replace(
        make_settings(),
        feedback=FeedbackSettings(sendgrid_public_key=verification_key(SIGNING_KEY)),
    )


@pytest.fixture
def now(clock) -> str:
    return str(int(clock().timestamp()))


def post(client, body: bytes, headers: dict[str, str]):
    return client.post(PATH, data=body, headers={**headers, "Content-Type": "application/json"})


def test_a_signed_batch_records_bounces_complaints_and_unsubscribes(client, session, vault, now):
    body = json.dumps(BATCH).encode() + b"\r\n"  # SendGrid's body ends with CRLF; it is signed
    response = post(client, body, signed(body, now))
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "received": 7,
        "recorded": 4,
        "unchanged": 0,
        "duplicate": 0,
        "ignored": 3,
    }
    found = {event["address"]: event for event in recorded(session, vault)}
    assert {address: (e["action"], e["purpose"]) for address, e in found.items()} == {
        "bounced@example.com": ("hard_bounce", None),
        "complainer@example.com": ("complaint", None),
        "leaver@example.com": ("opted_out", "all"),
        "grouped@example.com": ("opted_out", "all"),
    }
    bounce = found["bounced@example.com"]
    assert (bounce["source"], bounce["actor"]) == ("sendgrid", "sendgrid")
    assert bounce["occurred_at"].replace(tzinfo=None).isoformat() == "2026-11-29T11:20:00"
    assert bounce["evidence"]["platform_event_id"] == "6g4ZI7SA-xmRDv57GoPIPw=="
    assert bounce["evidence"]["platform_event_type"] == "bounce"
    assert bounce["evidence"]["bounce_type"] == "bounce"
    assert bounce["evidence"]["smtp_status"] == "5.0.0"
    assert found["grouped@example.com"]["evidence"]["asm_group_id"] == "10"


def test_a_replayed_batch_is_answered_as_duplicates_and_records_nothing_more(
    client, session, vault, now
):
    body = json.dumps(BATCH).encode()
    headers = signed(body, now)
    assert post(client, body, headers).status_code == 200
    before = webhook_count("sendgrid", "duplicate")
    again = post(client, body, headers)
    assert again.status_code == 200
    assert again.get_json()["duplicate"] == 4
    assert again.get_json()["recorded"] == 0
    assert len(recorded(session, vault)) == 4
    assert webhook_count("sendgrid", "duplicate") == before + 4


def test_a_forged_signature_records_nothing_and_answers_401(client, session, vault, now, admin):
    body = json.dumps(BATCH).encode()
    before = webhook_count("sendgrid", "refused")
    for headers in (
        signed(body, now, key=OTHER_KEY),  # someone else's key
        signed(body.replace(b"bounced@", b"someone@"), now),  # a body changed after signing
        {**signed(body, now), TIMESTAMP: str(int(now) + 1)},  # the timestamp changed
        {**signed(body, now), SIGNATURE: "not base64!"},
        {**signed(body, now, key=OTHER_KEY), **admin},  # an API key is no substitute
    ):
        response = post(client, body, headers)
        assert response.status_code == 401, headers
        assert response.get_json()["message"].startswith("Refused: ")
        assert "signature does not verify" in response.get_json()["message"]
    assert recorded(session, vault) == []
    assert webhook_count("sendgrid", "refused") == before + 5


def test_a_stale_or_future_timestamp_is_refused_even_when_signed(client, session, vault, clock):
    body = json.dumps(BATCH).encode()
    for moment in (clock() - timedelta(seconds=301), clock() + timedelta(seconds=301)):
        stamp = str(int(moment.timestamp()))
        response = post(client, body, signed(body, stamp))
        assert response.status_code == 401
        assert "at most 300 s" in response.get_json()["message"]
    assert recorded(session, vault) == []
    fresh = str(int((clock() - timedelta(seconds=299)).timestamp()))
    assert post(client, body, signed(body, fresh)).status_code == 200


def test_a_request_without_the_signature_headers_is_refused(client, session, vault, now):
    body = json.dumps(BATCH).encode()
    assert post(client, body, {}).status_code == 401
    only_signature = {SIGNATURE: signed(body, now)[SIGNATURE]}
    assert post(client, body, only_signature).status_code == 401
    not_a_time = signed(body, "yesterday")
    message = post(client, body, not_a_time).get_json()["message"]
    assert "not a Unix time" in message
    assert recorded(session, vault) == []


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[{not json", "not JSON"),
        (b'{"event": "bounce"}', "a JSON array of events"),
        (b'["bounce"]', "event 0 is not an object"),
        (
            json.dumps([{"event": "spamreport", "email": "jane@example.com"}]).encode(),
            "SendGrid event 0 has no usable event id",
        ),
    ],
)
def test_a_verified_body_that_is_not_sendgrid_s_events_is_400(
    client, session, vault, now, body, says
):
    response = post(client, body, signed(body, now))
    assert response.status_code == 400
    assert says in response.get_json()["message"]
    assert recorded(session, vault) == []


def test_a_body_over_1_mib_is_413_before_it_is_verified(client, now):
    body = b"[" + b" " * (1024 * 1024) + b"]"
    response = post(client, body, signed(body, now))
    assert response.status_code == 413
    assert response.get_json()["code"] == 413


def test_the_webhook_is_off_until_its_key_is_set(make_settings, app_on_same_database, now):
    client = app_on_same_database(make_settings()).test_client()
    body = json.dumps(BATCH).encode()
    response = post(client, body, signed(body, now))
    assert response.status_code == 404
    assert "SENDGRID_WEBHOOK_PUBLIC_KEY" in response.get_json()["message"]


def test_events_are_counted_on_metrics_by_platform_and_outcome(client, now):
    body = json.dumps(BATCH).encode()
    before = {outcome: webhook_count("sendgrid", outcome) for outcome in ("recorded", "ignored")}
    assert post(client, body, signed(body, now)).status_code == 200
    page = client.get("/metrics").get_data(as_text=True)
    assert 'suppression_webhook_events_total{outcome="recorded",platform="sendgrid"}' in page
    assert webhook_count("sendgrid", "recorded") == before["recorded"] + 4
    assert webhook_count("sendgrid", "ignored") == before["ignored"] + 3
