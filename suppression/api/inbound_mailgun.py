"""`POST /v1/inbound/mailgun`: Mailgun's webhooks (signed in the body).

No API key: the HMAC in the body's `signature` block, made with
MAILGUN_WEBHOOK_SIGNING_KEY, proves Mailgun sent it (domain/feedback_mailgun.py).
Refused whole (401), recording nothing: no or a wrong signature; a timestamp over
FEEDBACK_MAX_AGE_SECONDS old; a token that came before with another event (the
signature does not cover the event, so that is someone re-using a captured
signature). A body that is not JSON, or a verified one without an event, is a 400.

The same token with the same event is the same delivery again (a Mailgun retry
after an answer it did not get, or a captured request sent again): it is answered
as a duplicate whatever its age, records nothing, and stops Mailgun retrying.
"""

from __future__ import annotations

from typing import Any

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
from suppression.domain.feedback import MAILGUN, FeedbackRefused, require_fresh
from suppression.domain.feedback_mailgun import (
    delivery_key,
    read_event,
    read_signature,
    verify_signature,
)
from suppression.domain.feedback_payloads import read_json
from suppression.services.feedback.receipts import claim_nonce

blp = Blueprint(
    "inbound_mailgun", __name__, url_prefix="/v1", description="Feedback webhooks: Mailgun"
)

MAILGUN_BODY = {
    "required": True,
    "description": (
        "One Mailgun webhook event as Mailgun posts it: the `signature` block "
        "(`timestamp`, `token`, `signature`) and the `event-data`, at most 1 MiB."
    ),
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "signature": {
                        "type": "object",
                        "properties": {
                            "timestamp": {"type": "string"},
                            "token": {"type": "string"},
                            "signature": {"type": "string"},
                        },
                    },
                    "event-data": {"type": "object"},
                },
            },
            "example": {
                "signature": {
                    "timestamp": "1529006854",
                    "token": "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0",
                    "signature": "d2271d12299f6592d9d44cd9d250f0704e4674c30d79d07c47a66f95ce71cf55",
                },
                "event-data": {
                    "event": "failed",
                    "severity": "permanent",
                    "id": "G9Bn5sl1TC6nu79C8C0bwg",
                    "timestamp": 1521233195.375624,
                    "recipient": "alice@example.com",
                },
            },
        }
    },
}


@blp.route("/inbound/mailgun")
class MailgunFeedbackView(MethodView):
    @blp.doc(security=[], requestBody=MAILGUN_BODY)
    @blp.response(200, FeedbackReceivedSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Not JSON, or no event")
    @blp.alt_response(
        401,
        response="DEFAULT_ERROR",
        description="Signature missing or wrong, too old, or its token used with another event",
    )
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Off: no signing key set")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over 1 MiB")
    def post(self) -> dict[str, Any]:
        """Record Mailgun's permanent failures, complaints and unsubscribes as hard
        bounces, complaints and opt-outs (source `mailgun`, the event's id as
        evidence). Verified by Mailgun's signature, not an API key; each token
        serves one event, and each event acts once."""
        settings = current.settings().feedback
        require_enabled(settings.mailgun_enabled, "Mailgun", "MAILGUN_WEBHOOK_SIGNING_KEY")
        assert settings.mailgun_signing_key is not None  # require_enabled said so
        body = webhook_body()
        session, now = current.db_session(), current.now()
        try:
            document = read_json(body, "Mailgun")
            signature = read_signature(document)
            verify_signature(settings.mailgun_signing_key, signature)
            event = read_event(document)
            # A token and event never seen together: a first delivery, held to the
            # freshness and one-use rules (the claims go if it is refused).
            if claim_nonce(session, MAILGUN, delivery_key(signature, event), now):
                require_fresh(signature.signed_at, now, settings.max_age_seconds)
                if not claim_nonce(session, MAILGUN, signature.token, now):
                    raise FeedbackRefused(
                        401, "the Mailgun token was used before, with another event"
                    )
        except FeedbackRefused as refused:
            refuse(MAILGUN, refused)
        return record(MAILGUN, [event])
