"""`POST /v1/inbound/postmark`: Postmark's webhooks (basic auth).

No API key: Postmark signs nothing, so the basic-auth credentials in the webhook
URL (POSTMARK_WEBHOOK_USERNAME and POSTMARK_WEBHOOK_PASSWORD), sent over HTTPS,
are what proves Postmark sent it. Wrong or missing credentials are a 401 with a
`WWW-Authenticate` challenge, before a byte of the body is read. An
authenticated body that is not a Postmark notification is a 400. Postmark sends
no timestamp to check; a request sent again is the same event id again, a
duplicate that changes nothing (domain/feedback_postmark.py).
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
from suppression.domain.feedback import POSTMARK, FeedbackRefused
from suppression.domain.feedback_postmark import credentials_match, read_event

blp = Blueprint(
    "inbound_postmark", __name__, url_prefix="/v1", description="Feedback webhooks: Postmark"
)

CHALLENGE = {"WWW-Authenticate": 'Basic realm="postmark feedback", charset="UTF-8"'}
POSTMARK_BODY = {
    "required": True,
    "description": (
        "One Postmark webhook notification (`RecordType` Bounce, SpamComplaint, "
        "SubscriptionChange, ...), at most 1 MiB."
    ),
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"RecordType": {"type": "string"}}},
            "example": {
                "RecordType": "Bounce",
                "MessageStream": "outbound",
                "ID": 4323372036854775807,
                "Type": "HardBounce",
                "TypeCode": 1,
                "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
                "Email": "john@example.com",
                "BouncedAt": "2019-11-05T16:33:54.9070259Z",
            },
        }
    },
}


@blp.route("/inbound/postmark")
class PostmarkFeedbackView(MethodView):
    @blp.doc(security=[{"postmarkBasic": []}], requestBody=POSTMARK_BODY)
    @blp.response(200, FeedbackReceivedSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Not a Postmark notification")
    @blp.alt_response(401, response="DEFAULT_ERROR", description="Wrong or no credentials")
    @blp.alt_response(404, response="DEFAULT_ERROR", description="Off: no credentials set")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over 1 MiB")
    def post(self) -> dict[str, Any]:
        """Record Postmark's hard bounces, spam complaints and suppressions
        (SubscriptionChange) as hard bounces, complaints and opt-outs (source
        `postmark`, the event's id as evidence). Authenticated by the basic-auth
        credentials in the webhook's URL, not an API key. Each event acts once."""
        settings = current.settings().feedback
        require_enabled(
            settings.postmark_enabled,
            "Postmark",
            "POSTMARK_WEBHOOK_USERNAME and POSTMARK_WEBHOOK_PASSWORD",
        )
        assert settings.postmark_username is not None
        assert settings.postmark_password is not None
        given = request.authorization
        if given is None or given.type != "basic":
            given = None  # a Bearer API key is no credential here
        if not credentials_match(
            given.username if given else None,
            given.password if given else None,
            settings.postmark_username,
            settings.postmark_password,
        ):
            reason = "the Postmark webhook's basic-auth credentials are wrong or missing"
            refuse(POSTMARK, FeedbackRefused(401, reason), headers=CHALLENGE)
        try:
            event = read_event(webhook_body(), current.vault().index_key)
        except FeedbackRefused as refused:
            refuse(POSTMARK, refused)
        return record(POSTMARK, [event])
