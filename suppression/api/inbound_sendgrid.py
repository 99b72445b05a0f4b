"""`POST /v1/inbound/sendgrid`: SendGrid's Event Webhook (signed).

No API key: the ECDSA signature over the timestamp and the raw body is what
proves SendGrid sent it (domain/feedback_sendgrid.py checks it before a byte of
the body is parsed). A request that fails it, or whose timestamp is over
FEEDBACK_MAX_AGE_SECONDS old, is refused whole (401); a verified body that is not
SendGrid's array of events is a 400. Each event acts once per `sg_event_id`:
SendGrid retries a batch for up to 72 hours until it gets a 2xx, and a retried
event is a duplicate that changes nothing.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint

from suppression.api.feedback import (
    FeedbackReceivedSchema,
    record,
    refuse,
    require_enabled,
    webhook_body,
)
from suppression.app import current
from suppression.domain.feedback import SENDGRID, FeedbackRefused
from suppression.domain.feedback_sendgrid import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    load_verification_key,
    read_events,
    verify_request,
)

blp = Blueprint(
    "inbound_sendgrid", __name__, url_prefix="/v1", description="Feedback webhooks: SendGrid"
)

SENDGRID_BODY = {
    "required": True,
    "description": (
        "SendGrid's Event Webhook batch, as SendGrid signs it: a JSON array of events "
        "(`event`, `email`, `timestamp`, `sg_event_id`, ...), at most 1 MiB."
    ),
    "content": {
        "application/json": {
            "schema": {"type": "array", "items": {"type": "object"}},
            "example": [
                {
                    "email": "example@test.com",
                    "timestamp": 1513299569,
                    "event": "bounce",
                    "type": "bounce",
                    "status": "5.0.0",
                    "sg_event_id": "sg_event_id",
                    "sg_message_id": "sg_message_id",
                }
            ],
        }
    },
}
SIGNATURE_PARAMETERS = [
    {
        "in": "header",
        "name": name,
        "required": False,
        "schema": {"type": "string"},
        "description": description,
    }
    for name, description in (
        (SIGNATURE_HEADER, "Base64 DER ECDSA P-256 signature of the timestamp and the body"),
        (TIMESTAMP_HEADER, "Unix time of the signature"),
    )
]


@blp.route("/inbound/sendgrid")
class SendGridFeedbackView(MethodView):
    @blp.doc(security=[], requestBody=SENDGRID_BODY, parameters=SIGNATURE_PARAMETERS)
    @blp.response(200, FeedbackReceivedSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Verified, but not events")
    @blp.alt_response(
        401, response="DEFAULT_ERROR", description="Signature missing, wrong or too old"
    )
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Off: no verification key set")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over 1 MiB")
    def post(self) -> dict[str, Any]:
        """Record SendGrid's bounces (`type: bounce`), spam reports and unsubscribes
        as hard bounces, complaints and opt-outs (source `sendgrid`, the event's
        `sg_event_id` as evidence). Verified by SendGrid's signature, not an API key.
        Each event id acts once: a retried batch answers its events as duplicates."""
        settings = current.settings().feedback
        require_enabled(settings.sendgrid_enabled, "SendGrid", "SENDGRID_WEBHOOK_PUBLIC_KEY")
        assert settings.sendgrid_public_key is not None  # require_enabled said so
        body = webhook_body()
        try:
            verify_request(
                load_verification_key(settings.sendgrid_public_key),
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                body,
                current.now(),
                settings.max_age_seconds,
            )
            events = read_events(body)
        except FeedbackRefused as refused:
            refuse(SENDGRID, refused)
        return record(SENDGRID, events)
