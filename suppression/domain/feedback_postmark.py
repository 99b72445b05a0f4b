"""Postmark's webhooks: its basic-auth credentials, and what a notification says.

Postmark signs nothing and sends no timestamp: a webhook is protected by the
basic-auth credentials put in its URL (`https://<user>:<password>@host/...`) and
by HTTPS, which keeps them secret on the way.
https://postmarkapp.com/developer/webhooks/webhooks-overview
Both are compared in constant time, digests of equal length, so that neither a
wrong user name nor a wrong password's length shows in the time of the answer.
A request sent again is the same event again: a duplicate.

One notification per request, named by its `RecordType`:
- `Bounce` with `Type: HardBounce` is a hard bounce (its `ID` is the event id);
  other bounce types (soft, transient, DNS, auto-reply...) are ignored;
  https://postmarkapp.com/developer/webhooks/bounce-webhook
- `SpamComplaint` is a complaint (its `ID` too);
  https://postmarkapp.com/developer/webhooks/spam-complaint-webhook
- `SubscriptionChange` with `SuppressSending: true` is Postmark suppressing the
  address: for its `SuppressionReason` `HardBounce` a hard bounce, `SpamComplaint`
  a complaint, otherwise (`ManualSuppression`: the recipient's unsubscribe, or
  the sender's own) an opt-out of every purpose. `SuppressSending: false` (a
  reactivation at Postmark) is ignored: it is no one's consent.
  https://postmarkapp.com/developer/webhooks/subscription-change-webhook
  It has no ID field, and its MessageID is null for a manual suppression: its
  event id is derived from MessageID, ChangedAt and the recipient, keyed like an
  address's index (the id is kept as evidence and its digest in the receipts;
  neither may let the address be tested for).
- everything else (Delivery, Open, Click) is ignored.
"""

from __future__ import annotations

import hashlib
import hmac

from suppression.domain.addresses import canonicalise
from suppression.domain.feedback import (
    POSTMARK,
    FeedbackAction,
    FeedbackEvent,
    FeedbackRefused,
    detail,
    require_event_id,
)
from suppression.domain.feedback_payloads import from_iso, read_json, text

HARD_BOUNCE = "HardBounce"
SUPPRESSED_FOR = {
    "HardBounce": FeedbackAction.HARD_BOUNCE,
    "SpamComplaint": FeedbackAction.COMPLAINT,
}


def credentials_match(
    given_user: str | None, given_password: str | None, user: str, password: str
) -> bool:
    """Both the user name and the password are right, compared in constant time."""

    def same(given: str | None, expected: str) -> bool:
        return hmac.compare_digest(
            hashlib.sha256((given or "").encode("utf-8", "surrogatepass")).digest(),
            hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest(),
        )

    # Both compared whatever the first says: `&`, not `and`.
    return same(given_user, user) & same(given_password, password)


def read_event(body: bytes, index_key: bytes) -> FeedbackEvent:
    """The notification in an authenticated body; FeedbackRefused(400) when it is not
    one. `index_key` keys the derived id of a subscription change."""
    document = read_json(body, "Postmark")
    if not isinstance(document, dict):
        raise FeedbackRefused(400, "a Postmark notification is a JSON object")
    record_type = text(document.get("RecordType")) or ""
    if record_type == "SubscriptionChange":
        return _subscription_change(document, index_key)
    action = None
    if record_type == "Bounce" and document.get("Type") == HARD_BOUNCE:
        action = FeedbackAction.HARD_BOUNCE
    elif record_type == "SpamComplaint":
        action = FeedbackAction.COMPLAINT
    event_id = (
        require_event_id(document.get("ID"), f"the Postmark {record_type}")
        if action is not None
        else str(document.get("ID") or "")
    )
    details = {
        "bounce_type": detail(document.get("Type")),
        "bounce_type_code": detail(document.get("TypeCode")),
        "diagnostic": detail(document.get("Details")),
        "message_id": detail(document.get("MessageID")),
        "message_stream": detail(document.get("MessageStream")),
    }
    return FeedbackEvent(
        platform=POSTMARK,
        event_id=event_id,
        event_type=detail(record_type) or "",
        action=action,
        address=text(document.get("Email")),
        occurred_at=from_iso(document.get("BouncedAt")),
        details={name: value for name, value in details.items() if value},
    )


def _subscription_change(document: dict[str, object], index_key: bytes) -> FeedbackEvent:
    suppressed = document.get("SuppressSending") is True
    reason = text(document.get("SuppressionReason"))
    action = SUPPRESSED_FOR.get(reason or "", FeedbackAction.OPT_OUT) if suppressed else None
    recipient = text(document.get("Recipient"))
    changed_at = text(document.get("ChangedAt"))
    if action is not None and changed_at is None:
        raise FeedbackRefused(400, "the Postmark SubscriptionChange has no ChangedAt")
    details = {
        "suppression_reason": detail(reason),
        "origin": detail(document.get("Origin")),
        "message_id": detail(document.get("MessageID")),
        "message_stream": detail(document.get("MessageStream")),
    }
    return FeedbackEvent(
        platform=POSTMARK,
        event_id=subscription_change_id(
            text(document.get("MessageID")), changed_at or "", recipient or "", index_key
        ),
        event_type="SubscriptionChange",
        action=action,
        address=recipient,
        occurred_at=from_iso(changed_at),
        details={name: value for name, value in details.items() if value},
    )


def subscription_change_id(
    message_id: str | None, changed_at: str, recipient: str, index_key: bytes
) -> str:
    """The same change always gets the same id; no two recipients' changes do."""
    canonical = canonicalise(recipient) or recipient
    keyed = hmac.digest(
        index_key,
        f"{message_id or ''}\n{changed_at}\n{canonical}".encode("utf-8", "surrogatepass"),
        "sha256",
    )
    return "subscription-change:" + keyed.hex()[:32]
