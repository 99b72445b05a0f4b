"""Mailgun's webhooks: the signature in the body, and what an event says.

Mailgun posts JSON `{"signature": {"timestamp", "token", "signature"},
"event-data": {...}}`. The signature is the hex HMAC-SHA256 of the timestamp
followed by the token, keyed with the HTTP webhook signing key; for a
subaccount's domain a `parent-signature` is the same made with the parent
account's key (either verifies here):
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
Mailgun advises refusing a token seen before and a timestamp far from now. The
signature covers neither the body nor the event, so a captured signature could
be sent again with another event: a token is bound to the one event it first
came with (`delivery_key`, in the receipts).

Mailgun retries what is not answered 200 (or 406) for 8 hours:
https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-retries
and its documentation does not say that a retry is signed anew; the same
signature block and event (token and event together, as first received) is
therefore the same delivery again, answered as a duplicate.

Events (https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/webhook-payloads,
https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-types):
- `failed` with `severity: permanent` is a hard bounce, except when the reason is
  Mailgun's own suppression of an address that complained or unsubscribed
  (`suppress-complaint`, `suppress-unsubscribe`): then it is that complaint or
  opt-out. `severity: temporary` is ignored: Mailgun retries it;
- `complained` is a complaint; `unsubscribed` an opt-out of every purpose;
- everything else (accepted, delivered, opened, clicked, ...) is ignored.

An event's `id` is "unique within a day" (Mailgun's event structure page,
https://documentation.mailgun.com/docs/mailgun/user-manual/events/event-structure);
receipts are kept a week, so the id used is `<id>@<whole seconds of its timestamp>`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime

from suppression.domain.feedback import (
    MAILGUN,
    FeedbackAction,
    FeedbackEvent,
    FeedbackRefused,
    detail,
    require_event_id,
)
from suppression.domain.feedback_payloads import from_unix, text

MAX_TOKEN = 200  # Mailgun's are 50 characters
ACTIONS = {"complained": FeedbackAction.COMPLAINT, "unsubscribed": FeedbackAction.OPT_OUT}
# A permanent failure because Mailgun already holds the address on another list.
SUPPRESSED_FOR = {
    "suppress-complaint": FeedbackAction.COMPLAINT,
    "suppress-unsubscribe": FeedbackAction.OPT_OUT,
}


@dataclass(frozen=True)
class MailgunSignature:
    timestamp: str
    token: str
    signatures: tuple[str, ...]  # `signature`, and `parent-signature` when present
    signed_at: datetime


def read_signature(document: object) -> MailgunSignature:
    """The request's signature block; FeedbackRefused(401) when there is none."""
    block = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(block, dict):
        raise FeedbackRefused(401, "the request carries no Mailgun signature")
    timestamp, token = text(block.get("timestamp")), text(block.get("token"))
    signatures = tuple(
        value for name in ("signature", "parent-signature") if (value := text(block.get(name)))
    )
    if timestamp is None or token is None or not signatures or len(token) > MAX_TOKEN:
        raise FeedbackRefused(401, "the Mailgun signature needs a timestamp, token and signature")
    signed_at = from_unix(timestamp) if timestamp.isascii() and timestamp.isdigit() else None
    if signed_at is None:
        raise FeedbackRefused(401, "the Mailgun signature's timestamp is not a Unix time")
    return MailgunSignature(timestamp, token, signatures, signed_at)


def verify_signature(signing_key: str, signature: MailgunSignature) -> None:
    """Refuse (401) unless a signature is the HMAC of timestamp + token under the
    key, compared in constant time."""
    expected = hmac.new(
        signing_key.encode(), (signature.timestamp + signature.token).encode(), hashlib.sha256
    ).hexdigest()
    matches = [
        hmac.compare_digest(expected.encode(), given.lower().encode())
        for given in signature.signatures
    ]
    if not any(matches):
        raise FeedbackRefused(401, "the Mailgun signature does not verify")


def read_event(document: object) -> FeedbackEvent:
    """The verified request's event; FeedbackRefused(400) when it has none to read."""
    data = document.get("event-data") if isinstance(document, dict) else None
    if not isinstance(data, dict):
        raise FeedbackRefused(400, "the Mailgun notification has no event-data object")
    event_type = text(data.get("event")) or ""
    action = ACTIONS.get(event_type)
    reason = text(data.get("reason"))
    if event_type == "failed" and data.get("severity") == "permanent":
        action = SUPPRESSED_FOR.get(reason or "", FeedbackAction.HARD_BOUNCE)
    occurred_at = from_unix(data.get("timestamp"))
    event_id = (
        require_event_id(data.get("id"), "the Mailgun event")
        if action is not None
        else str(data.get("id") or "")
    )
    if occurred_at is not None:
        event_id = f"{event_id}@{int(occurred_at.timestamp())}"
    status = data.get("delivery-status")
    status = status if isinstance(status, dict) else {}
    message = data.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    details = {
        "severity": detail(data.get("severity")),
        "reason": detail(reason),
        "smtp_code": detail(status.get("code")),
        "diagnostic": detail(status.get("description") or status.get("message")),
        "message_id": detail(headers.get("message-id")) if isinstance(headers, dict) else None,
    }
    return FeedbackEvent(
        platform=MAILGUN,
        event_id=event_id,
        event_type=detail(event_type) or "",
        action=action,
        address=text(data.get("recipient")),
        occurred_at=occurred_at,
        details={name: value for name, value in details.items() if value},
    )


def delivery_key(signature: MailgunSignature, event: FeedbackEvent) -> str:
    """The token with the event it came with: the same key again is the same
    delivery (Mailgun's retry), the token with another event a replay."""
    return f"{signature.token}/{event.event_id}"
