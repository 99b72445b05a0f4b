"""What an Amazon SES notification, delivered by SNS, says: its FeedbackEvents.

The SNS message's `Message` is SES's JSON: `notificationType` (or `eventType` when
it comes from a configuration set's event publishing), a `mail` object, and a
`bounce` or `complaint` object naming the recipients it is about:
https://docs.aws.amazon.com/ses/latest/dg/notification-contents.html
https://docs.aws.amazon.com/ses/latest/dg/event-publishing-retrieving-sns-contents.html

- a `Bounce` with `bounceType: Permanent` is a hard bounce of each of its
  `bouncedRecipients`; a Transient or Undetermined one is ignored (SES retries
  those itself, and an Undetermined bounce names no cause to act on);
- a `Complaint` is a complaint of each of its `complainedRecipients`;
- anything else (Delivery, Send, Open, the topic's test notification...) is one
  ignored event.

One SNS message may name several recipients, and SNS's MessageId is what a retry
of it repeats, so each recipient's event id is `<MessageId>/<n>`, n its 1-based
place in the list: the same recipient of the same message has the same id in
every retry, and no address goes into an id (receipts keep ids' digests).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from suppression.domain.feedback import (
    SES,
    FeedbackAction,
    FeedbackEvent,
    FeedbackRefused,
    detail,
)

PERMANENT = "Permanent"
BOUNCE, COMPLAINT = "Bounce", "Complaint"
# What each kind keeps as evidence: SES's field -> the evidence's name.
BOUNCE_DETAILS = {"bounceType": "bounce_type", "bounceSubType": "bounce_sub_type"}
BOUNCED_RECIPIENT_DETAILS = {
    "diagnosticCode": "diagnostic_code",
    "status": "status",
    "action": "dsn_action",
}
COMPLAINT_DETAILS = {
    "complaintFeedbackType": "complaint_feedback_type",
    "complaintSubType": "complaint_sub_type",
}


def ses_events(message_id: str, message: str) -> list[FeedbackEvent]:
    """The events of one SES notification whose SNS MessageId is `message_id`.
    FeedbackRefused(400) when the message is not SES's JSON."""
    try:
        notification = json.loads(message)
    except json.JSONDecodeError:
        raise FeedbackRefused(
            400, "the SNS Message is not an SES notification (not JSON)"
        ) from None
    if not isinstance(notification, dict):
        raise FeedbackRefused(400, "the SNS Message is not an SES notification")
    kind = notification.get("notificationType") or notification.get("eventType")
    kind = kind if isinstance(kind, str) else "unknown"
    mail = _object(notification.get("mail"))
    common = {"mail_message_id": detail(mail.get("messageId"))}
    if kind == BOUNCE:
        return _bounces(message_id, _object(notification.get("bounce")), common)
    if kind == COMPLAINT:
        return _complaints(message_id, _object(notification.get("complaint")), common)
    return [_ignored(message_id, detail(kind) or "unknown")]


def _bounces(
    message_id: str, bounce: dict[str, Any], common: dict[str, str | None]
) -> list[FeedbackEvent]:
    permanent = bounce.get("bounceType") == PERMANENT
    shared = {
        **common,
        **_details(bounce, BOUNCE_DETAILS),
        "feedback_id": detail(bounce.get("feedbackId")),
    }
    events = []
    for n, recipient in enumerate(_recipients(bounce, "bouncedRecipients"), start=1):
        events.append(
            FeedbackEvent(
                platform=SES,
                event_id=f"{message_id}/{n}",
                event_type=BOUNCE,
                action=FeedbackAction.HARD_BOUNCE if permanent else None,
                address=_address(recipient),
                occurred_at=_time(bounce.get("timestamp")),
                details=_present({**shared, **_details(recipient, BOUNCED_RECIPIENT_DETAILS)}),
            )
        )
    return events or [_ignored(message_id, BOUNCE)]


def _complaints(
    message_id: str, complaint: dict[str, Any], common: dict[str, str | None]
) -> list[FeedbackEvent]:
    shared = {
        **common,
        **_details(complaint, COMPLAINT_DETAILS),
        "feedback_id": detail(complaint.get("feedbackId")),
    }
    events = [
        FeedbackEvent(
            platform=SES,
            event_id=f"{message_id}/{n}",
            event_type=COMPLAINT,
            action=FeedbackAction.COMPLAINT,
            address=_address(recipient),
            occurred_at=_time(complaint.get("timestamp")),
            details=_present(shared),
        )
        for n, recipient in enumerate(_recipients(complaint, "complainedRecipients"), start=1)
    ]
    return events or [_ignored(message_id, COMPLAINT)]


def _ignored(message_id: str, kind: str) -> FeedbackEvent:
    return FeedbackEvent(
        platform=SES,
        event_id=message_id,
        event_type=kind,
        action=None,
        address=None,
        occurred_at=None,
    )


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _recipients(parent: dict[str, Any], name: str) -> list[dict[str, Any]]:
    listed = parent.get(name)
    return [_object(item) for item in listed] if isinstance(listed, list) else []


def _address(recipient: dict[str, Any]) -> str | None:
    value = recipient.get("emailAddress")
    return value if isinstance(value, str) and value else None


def _details(source: dict[str, Any], names: Mapping[str, str]) -> dict[str, str | None]:
    return {ours: detail(source.get(theirs)) for theirs, ours in names.items()}


def _present(details: dict[str, str | None]) -> dict[str, str]:
    return {name: value for name, value in details.items() if value is not None}


def _time(value: object) -> datetime | None:
    """SES's ISO 8601 time (`2016-01-27T14:59:38.237Z`); None when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        stamp = datetime.fromisoformat(value)
    except ValueError:
        return None
    return stamp.astimezone(UTC) if stamp.tzinfo is not None else None
