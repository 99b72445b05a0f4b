"""SendGrid's Event Webhook read purely (domain/feedback_sendgrid.py): SendGrid's
own signed example verifies, keys that are not P-256 are refused, and each event
kind maps to what the service does."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from suppression.config.feedback import feedback_from_env
from suppression.config.settings import ConfigError
from suppression.domain.feedback import FeedbackAction, FeedbackRefused
from suppression.domain.feedback_sendgrid import (
    InvalidVerificationKey,
    load_verification_key,
    read_events,
    verify_request,
)

# SendGrid's own test vector, signed by SendGrid's key: sendgrid-python's
# test/unit/test_eventwebhook.py (https://github.com/sendgrid/sendgrid-python).
SDK_PUBLIC_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)
SDK_SIGNATURE = (
    "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtE"
    "ZtM="
)
SDK_TIMESTAMP = "1600112502"
SDK_PAYLOAD = (
    json.dumps(
        [
            {
                "email": "hello@world.com",
                "event": "dropped",
                "reason": "Bounced Address",
                "sg_event_id": "ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",
                "sg_message_id": (
                    "LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0"
                ),
                "smtp-id": "<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",
                "timestamp": 1600112492,
            }
        ],
        sort_keys=True,
        separators=(",", ":"),
    )
    + "\r\n"
).encode()
SIGNED_AT = datetime.fromtimestamp(1600112502, UTC)


def test_sendgrid_s_own_signed_example_verifies_and_reads_as_one_ignored_event():
    key = load_verification_key(SDK_PUBLIC_KEY)
    verify_request(key, SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD, SIGNED_AT, 300)
    [event] = read_events(SDK_PAYLOAD)
    assert (event.event_type, event.action, event.address) == ("dropped", None, "hello@world.com")


@pytest.mark.parametrize(
    ("signature", "timestamp", "payload"),
    [
        (SDK_SIGNATURE, SDK_TIMESTAMP, b"payload"),
        (SDK_SIGNATURE, "1600112503", SDK_PAYLOAD),
        (
            "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH3j/0=",
            SDK_TIMESTAMP,
            SDK_PAYLOAD,
        ),
    ],
)
def test_a_changed_body_timestamp_or_signature_does_not_verify(signature, timestamp, payload):
    key = load_verification_key(SDK_PUBLIC_KEY)
    with pytest.raises(FeedbackRefused) as refused:
        verify_request(key, signature, timestamp, payload, SIGNED_AT, 300)
    assert refused.value.status == 401


def test_the_signed_example_is_stale_six_minutes_later():
    key = load_verification_key(SDK_PUBLIC_KEY)
    later = datetime.fromtimestamp(1600112502 + 360, UTC)
    with pytest.raises(FeedbackRefused, match="at most 300 s"):
        verify_request(key, SDK_SIGNATURE, SDK_TIMESTAMP, SDK_PAYLOAD, later, 300)


def test_the_key_may_come_with_pem_armour():
    armoured = f"-----BEGIN PUBLIC KEY-----\n{SDK_PUBLIC_KEY}\n-----END PUBLIC KEY-----\n"
    assert load_verification_key(armoured).curve.name == "secp256r1"


def _spki(public_key) -> str:
    der = public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@pytest.mark.parametrize(
    "key",
    [
        "MFkw...",
        "not base64 at all!",
        base64.b64encode(b"not DER").decode(),
        _spki(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()),
        _spki(ec.generate_private_key(ec.SECP384R1()).public_key()),
    ],
)
def test_a_key_that_is_not_a_p256_public_key_stops_the_start(key):
    with pytest.raises(InvalidVerificationKey):
        load_verification_key(key)
    with pytest.raises(ConfigError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        feedback_from_env({"SENDGRID_WEBHOOK_PUBLIC_KEY": key})


def _one(**fields) -> bytes:
    return json.dumps([{"email": "jane@example.com", "sg_event_id": "e-1", **fields}]).encode()


@pytest.mark.parametrize(
    ("fields", "action"),
    [
        ({"event": "bounce", "type": "bounce"}, FeedbackAction.HARD_BOUNCE),
        ({"event": "bounce", "type": "blocked"}, None),
        ({"event": "bounce"}, None),
        ({"event": "spamreport"}, FeedbackAction.COMPLAINT),
        ({"event": "unsubscribe"}, FeedbackAction.OPT_OUT),
        ({"event": "group_unsubscribe", "asm_group_id": 42}, FeedbackAction.OPT_OUT),
        ({"event": "group_resubscribe", "asm_group_id": 42}, None),
        ({"event": "deferred"}, None),
        ({"event": "open"}, None),
    ],
)
def test_each_event_kind_maps_to_what_the_service_does(fields, action):
    [event] = read_events(_one(**fields))
    assert event.action == action
    assert event.event_id == "e-1"
    assert event.purpose is None  # an opt-out is of every purpose


def test_an_ignored_event_needs_no_id_but_one_acted_on_does():
    [event] = read_events(json.dumps([{"event": "delivered", "email": "a@example.com"}]).encode())
    assert event.action is None
    with pytest.raises(FeedbackRefused, match="event 1 has no usable event id") as refused:
        read_events(
            json.dumps(
                [
                    {"event": "delivered", "sg_event_id": "d-1"},
                    {"event": "spamreport", "email": "a@example.com", "sg_event_id": ""},
                ]
            ).encode()
        )
    assert refused.value.status == 400


def test_unreadable_times_and_addresses_are_left_out_not_guessed():
    [event] = read_events(_one(event="spamreport", timestamp="soon", email=["a@example.com"]))
    assert (event.occurred_at, event.address) == (None, None)


def test_a_body_nested_too_deeply_is_400_not_a_crash():
    with pytest.raises(FeedbackRefused, match="nested too deeply"):
        read_events(b"[" * 100_000 + b"]" * 100_000)
