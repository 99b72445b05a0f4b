"""SendGrid's Event Webhook: its signature, and what its events say.

SendGrid signs each POST with ECDSA over the P-256 curve and SHA-256: the
signature (base64 DER) is over the bytes of the timestamp header followed by the
raw body, and verifies with the account's verification key, a base64 DER
SubjectPublicKeyInfo as the Mail Settings page shows it.
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
(the official helper does the same: sendgrid-python, sendgrid/helpers/eventwebhook).

The body is a JSON array of events, each with its own `sg_event_id`:
https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/event
- `bounce` with `type: bounce` is a hard bounce; `type: blocked` is the receiving
  server refusing for now (reputation, content), not the address: ignored;
- `spamreport` is a complaint;
- `unsubscribe` (the global unsubscribe) and `group_unsubscribe` (one unsubscribe
  group) are opt-outs of every purpose: which purposes a group stands for is
  known to the sender, not to this service, and an opt-out wider than asked is
  the safe error; the group's id stays in the evidence;
- everything else (processed, delivered, deferred, dropped, open, click,
  group_resubscribe...) is ignored: a resubscribe at the platform is no consent.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from suppression.domain.feedback import (
    SENDGRID,
    FeedbackAction,
    FeedbackEvent,
    FeedbackRefused,
    detail,
    require_event_id,
    require_fresh,
)
from suppression.domain.feedback_payloads import from_unix, read_json, text

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
ACTIONS = {
    "spamreport": FeedbackAction.COMPLAINT,
    "unsubscribe": FeedbackAction.OPT_OUT,
    "group_unsubscribe": FeedbackAction.OPT_OUT,
}
HARD_BOUNCE_TYPE = "bounce"


class InvalidVerificationKey(ValueError):
    """SENDGRID_WEBHOOK_PUBLIC_KEY is not a P-256 public key in base64 DER."""


@lru_cache(maxsize=4)
def load_verification_key(encoded: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER SubjectPublicKeyInfo;
    PEM armour around it is tolerated)."""
    lines = [line for line in encoded.strip().splitlines() if not line.startswith("-----")]
    try:
        key = load_der_public_key(base64.b64decode("".join(lines), validate=True))
    except (binascii.Error, ValueError) as error:
        raise InvalidVerificationKey(f"not a base64 DER public key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidVerificationKey("not an ECDSA P-256 public key")
    return key


def verify_request(
    key: ec.EllipticCurvePublicKey,
    signature: str | None,
    timestamp: str | None,
    body: bytes,
    now: datetime,
    max_age_seconds: int,
) -> None:
    """Refuse (401) a request whose signature is missing, wrong or stale."""
    if not signature or not timestamp:
        raise FeedbackRefused(401, f"the request carries no {SIGNATURE_HEADER} and timestamp")
    signed_at = from_unix(timestamp) if timestamp.isascii() and timestamp.isdigit() else None
    if signed_at is None:
        raise FeedbackRefused(401, f"{TIMESTAMP_HEADER} is not a Unix time")
    try:
        der = base64.b64decode(signature, validate=True)
        key.verify(der, timestamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        raise FeedbackRefused(401, "the SendGrid signature does not verify") from None
    require_fresh(signed_at, now, max_age_seconds)


def read_events(body: bytes) -> list[FeedbackEvent]:
    """The events of a verified body; FeedbackRefused(400) when it is not SendGrid's
    array of events, or an event acted on has no `sg_event_id`."""
    document = read_json(body, "SendGrid")
    if not isinstance(document, list):
        raise FeedbackRefused(400, "a SendGrid notification is a JSON array of events")
    return [_event(item, position) for position, item in enumerate(document)]


def _event(item: object, position: int) -> FeedbackEvent:
    if not isinstance(item, dict):
        raise FeedbackRefused(400, f"SendGrid event {position} is not an object")
    event_type = text(item.get("event")) or ""
    action = ACTIONS.get(event_type)
    if event_type == "bounce" and item.get("type") == HARD_BOUNCE_TYPE:
        action = FeedbackAction.HARD_BOUNCE
    event_id = (
        require_event_id(item.get("sg_event_id"), f"SendGrid event {position}")
        if action is not None
        else str(item.get("sg_event_id") or "")
    )
    details = {
        "bounce_type": detail(item.get("type")),
        "bounce_classification": detail(item.get("bounce_classification")),
        "smtp_status": detail(item.get("status")),
        "diagnostic": detail(item.get("reason")),
        "sg_message_id": detail(item.get("sg_message_id")),
        "asm_group_id": detail(item.get("asm_group_id")),
    }
    return FeedbackEvent(
        platform=SENDGRID,
        event_id=event_id,
        event_type=detail(event_type) or "",
        action=action,
        address=text(item.get("email")),
        occurred_at=from_unix(item.get("timestamp")),
        details={name: value for name, value in details.items() if value},
    )
