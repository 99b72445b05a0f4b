"""Postmark's webhooks read purely (domain/feedback_postmark.py): credentials,
record types, and the derived id of a subscription change."""

from __future__ import annotations

import json

import pytest

from suppression.domain.feedback import FeedbackAction, FeedbackRefused
from suppression.domain.feedback_postmark import (
    credentials_match,
    read_event,
    subscription_change_id,
)

KEY, OTHER_KEY = b"k" * 32, b"o" * 32


@pytest.mark.parametrize(
    ("user", "password", "matches"),
    [
        ("postmark", "s3cret", True),
        ("postmark", "s3cre", False),
        ("postmar", "s3cret", False),
        ("postmark", None, False),
        (None, None, False),
        ("", "", False),
    ],
)
def test_credentials_match_only_when_both_are_right(user, password, matches):
    assert credentials_match(user, password, "postmark", "s3cret") is matches


def _read(**fields) -> object:
    return read_event(json.dumps(fields).encode(), KEY)


@pytest.mark.parametrize(
    ("fields", "action"),
    [
        ({"RecordType": "Bounce", "Type": "HardBounce", "ID": 1}, FeedbackAction.HARD_BOUNCE),
        ({"RecordType": "Bounce", "Type": "SoftBounce", "ID": 1}, None),
        ({"RecordType": "Bounce", "Type": "DnsError", "ID": 1}, None),
        ({"RecordType": "SpamComplaint", "Type": "SpamComplaint", "ID": 1}, "complaint"),
        ({"RecordType": "Open", "ID": 1}, None),
        ({"RecordType": "Click"}, None),
    ],
)
def test_each_record_type_maps_to_what_the_service_does(fields, action):
    event = _read(Email="a@example.com", **fields)
    assert event.action == (FeedbackAction(action) if action else None)


def test_a_bounce_time_with_an_offset_is_read_as_utc():
    event = _read(
        RecordType="Bounce", Type="HardBounce", ID=1, BouncedAt="2014-08-01T13:28:10.2735393-04:00"
    )
    assert event.occurred_at is not None
    assert event.occurred_at.isoformat() == "2014-08-01T17:28:10.273539+00:00"


def test_a_subscription_change_id_is_stable_keyed_and_per_recipient():
    one = subscription_change_id(None, "2020-02-01T10:53:34.416071Z", "Bob@Example.com", KEY)
    assert one == subscription_change_id(
        None, "2020-02-01T10:53:34.416071Z", "bob@example.com", KEY
    )
    assert one != subscription_change_id(
        None, "2020-02-01T10:53:34.416071Z", "carol@example.com", KEY
    )
    assert one != subscription_change_id(
        None, "2020-02-01T10:53:34.416071Z", "bob@example.com", OTHER_KEY
    )
    assert one.startswith("subscription-change:")
    assert "bob" not in one


def test_an_unreadable_recipient_still_gets_an_id_and_no_address():
    event = _read(
        RecordType="SubscriptionChange",
        ChangedAt="2020-02-01T10:53:34Z",
        Recipient="\ud800@example.com",
        SuppressSending=True,
    )
    assert event.event_id.startswith("subscription-change:")
    assert event.action is FeedbackAction.OPT_OUT  # the intake ignores it: no valid address


def test_a_body_that_is_not_an_object_is_400():
    with pytest.raises(FeedbackRefused) as refused:
        read_event(b'"Bounce"', KEY)
    assert refused.value.status == 400
