"""`POST /v1/inbound/ses`: Amazon SES bounces and complaints, delivered by an
Amazon SNS topic subscribed to this URL over HTTPS.

No API key: SNS cannot send one. A request is believed when SNS signed it:
1. its TopicArn is one of SES_SNS_TOPIC_ARNS (403 otherwise, before anything is
   fetched);
2. its SigningCertURL is an HTTPS `.pem` on the SNS host of the topic's region
   (domain/sns.py), and its Timestamp is within FEEDBACK_MAX_AGE_SECONDS;
3. the certificate there chains to a trusted root and names SNS
   (connectors/sns_certificates.py), and its key verifies the signature,
   version 1 (SHA1withRSA) or 2 (SHA256withRSA).
Any failure answers 401 and records nothing; a certificate that cannot be
fetched just now answers 503, which SNS retries.

Then: a SubscriptionConfirmation is confirmed by a GET of its SubscribeURL (on the
same SNS host); an UnsubscribeConfirmation is logged; a Notification's SES
message becomes hard bounces and complaints (domain/feedback_ses.py), recorded
once per `<MessageId>/<n>` and committed before the answer. A retry is answered
200 with its events counted `duplicate`, so SNS stops retrying.
"""

from __future__ import annotations

import logging
from typing import Any, NoReturn

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import fields

from suppression.api.feedback import (
    ANSWERED,
    FeedbackReceivedSchema,
    record,
    refuse,
    require_enabled,
    webhook_body,
)
from suppression.app import current
from suppression.connectors.sns_certificates import CertificateUnavailable, UntrustedCertificate
from suppression.connectors.sns_subscriptions import (
    SubscriptionNotConfirmed,
    confirm_subscription,
)
from suppression.domain.feedback import SES, FeedbackRefused, require_fresh
from suppression.domain.feedback_ses import ses_events
from suppression.domain.sns import (
    TYPE_HEADER,
    MessageType,
    SnsMessage,
    read_envelope,
    require_accepted_topic,
    require_signing_cert_url,
    require_subscribe_url,
    verify_signature,
)

logger = logging.getLogger(__name__)

blp = Blueprint(
    "inbound_ses", __name__, url_prefix="/v1", description="Amazon SES feedback through SNS"
)

CONFIRMED, UNSUBSCRIBED = "confirmed", "unsubscribed"
# A confirmation carries no event.
NOTHING_RECEIVED = {"received": 0, **{outcome.value: 0 for outcome in ANSWERED}}

SNS_BODY = {
    "required": True,
    "description": (
        "One Amazon SNS message as SNS posts it (Content-Type text/plain; charset=UTF-8, "
        f"and the `{TYPE_HEADER}` header naming its Type): a Notification whose Message "
        "is an SES bounce or complaint notification, a SubscriptionConfirmation or an "
        "UnsubscribeConfirmation, signed by SNS. At most 1 MiB."
    ),
    "content": {
        "text/plain": {
            "schema": {
                "type": "string",
                "example": (
                    '{"Type": "Notification", "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", '
                    '"TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic", '
                    '"Message": "{\\"notificationType\\":\\"Bounce\\", ...}", '
                    '"Timestamp": "2012-05-02T00:54:06.655Z", "SignatureVersion": "2", '
                    '"Signature": "EXAMPLE...", "SigningCertURL": '
                    '"https://sns.us-west-2.amazonaws.com/SimpleNotificationService-....pem"}'
                ),
            }
        }
    },
}


class SesFeedbackSchema(FeedbackReceivedSchema):
    subscription = fields.String(
        allow_none=True,
        metadata={
            "enum": [CONFIRMED, UNSUBSCRIBED, None],
            "description": (
                "For a SubscriptionConfirmation, `confirmed`; for an UnsubscribeConfirmation, "
                "`unsubscribed`; null for a Notification"
            ),
        },
    )


@blp.route("/inbound/ses")
class SesFeedbackView(MethodView):
    @blp.doc(security=[], requestBody=SNS_BODY)
    @blp.response(200, SesFeedbackSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Not an SNS or SES message")
    @blp.alt_response(
        401,
        response="DEFAULT_ERROR",
        description="Unsigned, forged, stale, or its certificate is not SNS's",
    )
    @blp.alt_response(
        403, response="DEFAULT_ERROR", description="A topic not in SES_SNS_TOPIC_ARNS"
    )
    @blp.alt_response(
        404, response="DEFAULT_ERROR", description="Off: SES_SNS_TOPIC_ARNS is not set"
    )
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over 1 MiB")
    @blp.alt_response(
        502, response="DEFAULT_ERROR", description="SNS did not confirm the subscription"
    )
    @blp.alt_response(
        503, response="DEFAULT_ERROR", description="The signing certificate could not be fetched"
    )
    def post(self) -> dict[str, Any]:
        """Record Amazon SES feedback that SNS delivers: a permanent bounce blocks each
        bounced recipient (`hard_bounce`), a complaint each complained recipient
        (`complaint`), source `ses`, the SNS MessageId as evidence; other notifications
        are counted and ignored. Verified by SNS's signature, not an API key; a
        subscription is confirmed when SNS asks."""
        feedback = current.settings().feedback
        require_enabled(feedback.ses_enabled, "Amazon SES", "SES_SNS_TOPIC_ARNS")
        try:
            message = _verified(webhook_body())
        except FeedbackRefused as refused:
            _refuse(refused)
        if message.type is MessageType.SUBSCRIPTION_CONFIRMATION:
            return _confirm(message)
        if message.type is MessageType.UNSUBSCRIBE_CONFIRMATION:
            logger.info("SNS unsubscribed this endpoint from %s", message.topic_arn)
            return {**NOTHING_RECEIVED, "subscription": UNSUBSCRIBED}
        try:
            events = ses_events(message.message_id, message.message)
        except FeedbackRefused as refused:
            _refuse(refused)
        return {**record(SES, events), "subscription": None}


def _refuse(refused: FeedbackRefused) -> NoReturn:
    # The reason names what failed (a topic, a URL's host, the signature), never an
    # address: operators find a misconfigured topic or forgeries here.
    logger.warning("SES webhook refused a request (%d): %s", refused.status, refused.reason)
    refuse(SES, refused)


def _verified(body: bytes) -> SnsMessage:
    """The SNS message of a request, once SNS is shown to have signed it."""
    feedback = current.settings().feedback
    message = read_envelope(body, request.headers.get(TYPE_HEADER))
    require_accepted_topic(message, feedback.ses_topic_arns)
    url = require_signing_cert_url(message, feedback.sns_test_host)
    require_fresh(message.timestamp, current.now(), feedback.max_age_seconds)
    certificates = current.runtime().sns_certificates
    assert certificates is not None  # built whenever the webhook is on
    try:
        key = certificates.public_key(url, current.now())
    except UntrustedCertificate as error:
        raise FeedbackRefused(401, str(error)) from None
    except CertificateUnavailable as error:
        logger.warning("SNS signing certificate unavailable: %s", error)
        abort(503, message=f"The signing certificate could not be fetched: {error}; retry later.")
    verify_signature(message, key)
    return message


def _confirm(message: SnsMessage) -> dict[str, Any]:
    feedback = current.settings().feedback
    try:
        url = require_subscribe_url(message, feedback.sns_test_host)
    except FeedbackRefused as refused:
        _refuse(refused)
    try:
        confirm_subscription(url, feedback.sns_ca_file)
    except SubscriptionNotConfirmed as error:
        logger.warning("SNS subscription to %s not confirmed: %s", message.topic_arn, error)
        abort(502, message=f"The subscription could not be confirmed: {error}.")
    logger.info("SNS subscription to %s confirmed", message.topic_arn)
    return {**NOTHING_RECEIVED, "subscription": CONFIRMED}
