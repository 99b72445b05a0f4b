"""Mailgun's webhooks read purely (domain/feedback_mailgun.py): the signature
block, its HMAC, and what each event maps to.
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks"""

from __future__ import annotations

import hashlib
import hmac

import pytest

from suppression.domain.feedback import FeedbackAction, FeedbackRefused
from suppression.domain.feedback_mailgun import (
    delivery_key,
    read_event,
    read_signature,
    verify_signature,
)

KEY = "key-7e55d003b6b5f2c8e4c1a3b5d7f9e1a2"
# The shape of the docs' example block, signed here with KEY.
TIMESTAMP, TOKEN = "1770920772", "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
SIGNATURE = hmac.new(KEY.encode(), (TIMESTAMP + TOKEN).encode(), hashlib.sha256).hexdigest()


def _block(**fields) -> dict:
    return {"signature": {"timestamp": TIMESTAMP, "token": TOKEN, "signature": SIGNATURE, **fields}}


def test_the_hmac_of_timestamp_and_token_verifies_in_either_case_of_hex():
    verify_signature(KEY, read_signature(_block()))
    verify_signature(KEY, read_signature(_block(signature=SIGNATURE.upper())))
    assert read_signature(_block()).signed_at.year == 2026


@pytest.mark.parametrize(
    "block",
    [
        _block(signature="00" * 32),
        _block(token=TOKEN[:-1] + "4"),
        _block(timestamp="1770920773"),
        _block(signature="ünïcode"),
    ],
)
def test_anything_changed_does_not_verify(block):
    with pytest.raises(FeedbackRefused, match="does not verify") as refused:
        verify_signature(KEY, read_signature(block))
    assert refused.value.status == 401


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        {"signature": "abc"},
        _block(token=""),
        _block(token="t" * 201),
        _block(timestamp="soon"),
        _block(timestamp=1770920772),  # Mailgun sends a string; a number is not its shape
        {"signature": {"timestamp": TIMESTAMP, "token": TOKEN}},
    ],
)
def test_a_missing_or_malformed_signature_block_is_401(document):
    with pytest.raises(FeedbackRefused) as refused:
        read_signature(document)
    assert refused.value.status == 401


def _event(**data) -> dict:
    return {"event-data": {"id": "ev-1", "timestamp": 1795951200.5, "recipient": "a@x.com", **data}}


@pytest.mark.parametrize(
    ("data", "action"),
    [
        ({"event": "failed", "severity": "permanent", "reason": "bounce"}, "hard_bounce"),
        ({"event": "failed", "severity": "permanent", "reason": "old"}, "hard_bounce"),
        ({"event": "failed", "severity": "permanent", "reason": "suppress-bounce"}, "hard_bounce"),
        ({"event": "failed", "severity": "permanent", "reason": "suppress-complaint"}, "complaint"),
        (
            {"event": "failed", "severity": "permanent", "reason": "suppress-unsubscribe"},
            "opted_out",
        ),
        ({"event": "failed", "severity": "temporary", "reason": "generic"}, None),
        ({"event": "complained"}, "complaint"),
        ({"event": "unsubscribed"}, "opted_out"),
        ({"event": "delivered"}, None),
        ({"event": "clicked"}, None),
    ],
)
def test_each_event_maps_to_what_the_service_does(data, action):
    event = read_event(_event(**data))
    assert event.action == (FeedbackAction(action) if action else None)
    assert event.event_id == "ev-1@1795951200"


def test_a_token_is_bound_to_its_event():
    signature = read_signature(_block())
    first, other = read_event(_event(event="failed")), read_event(_event(event="x", id="ev-2"))
    assert delivery_key(signature, first) != delivery_key(signature, other)
    assert delivery_key(signature, first) == delivery_key(signature, read_event(_event()))


def test_an_event_acted_on_needs_an_id_and_an_ignored_one_does_not():
    assert read_event({"event-data": {"event": "delivered"}}).action is None
    with pytest.raises(FeedbackRefused, match="no usable event id") as refused:
        read_event({"event-data": {"event": "complained", "recipient": "a@x.com"}})
    assert refused.value.status == 400
    with pytest.raises(FeedbackRefused, match="no event-data"):
        read_event({"signature": {}})
