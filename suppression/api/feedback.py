"""What the feedback webhooks (api/inbound_ses.py, inbound_sendgrid.py,
inbound_mailgun.py, inbound_postmark.py) share: off until configured, refusing
a request whole, and recording its events then answering what became of them.

A platform retries what is not answered 2xx; an answer comes only after the
commit, so an event it was told about is never lost, and a retry of it is a
duplicate (the receipts) that changes nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, NoReturn

from flask import request
from flask_smorest import abort
from marshmallow import Schema, fields

from suppression.app import current
from suppression.domain.feedback import FeedbackEvent, FeedbackOutcome, FeedbackRefused
from suppression.observability import metrics
from suppression.services.feedback.intake import receive_feedback
from suppression.worker.one_click_folding import alarm_rule

# No platform sends a notification near this size (SendGrid batches up to ~1,000
# events, well under it); the endpoints are open to anyone, so a body is capped
# before it is read, far below the CSV uploads' MAX_CONTENT_LENGTH.
MAX_WEBHOOK_BYTES = 1024 * 1024

ANSWERED = [outcome for outcome in FeedbackOutcome if outcome is not FeedbackOutcome.REFUSED]


class FeedbackReceivedSchema(Schema):
    received = fields.Integer(metadata={"description": "Events in the request"})
    recorded = fields.Integer(metadata={"description": "Blocks and opt-outs recorded"})
    unchanged = fields.Integer(
        metadata={"description": "Opt-outs of an address opted out or erased already"}
    )
    duplicate = fields.Integer(
        metadata={"description": "Events whose id was received before: nothing done again"}
    )
    ignored = fields.Integer(
        metadata={"description": "Events the service does not act on, or without an address"}
    )


def require_enabled(enabled: bool, platform: str, setting: str) -> None:
    """A webhook whose secret is not set does not exist: 404, saying what turns it on."""
    if not enabled:
        abort(404, message=f"The {platform} feedback webhook is off: set {setting} to turn it on.")


def webhook_body() -> bytes:
    """The request body, refused (413) past MAX_WEBHOOK_BYTES before it is read."""
    overall = request.max_content_length
    request.max_content_length = (
        MAX_WEBHOOK_BYTES if overall is None else min(MAX_WEBHOOK_BYTES, overall)
    )
    return request.get_data(cache=True)


def refuse(
    platform: str, refused: FeedbackRefused, headers: dict[str, str] | None = None
) -> NoReturn:
    """Answer a request that failed verification; nothing of it is recorded.
    `headers` go on the answer (a `WWW-Authenticate` challenge, say)."""
    current.db_session().rollback()
    metrics.WEBHOOK_EVENTS.labels(platform, FeedbackOutcome.REFUSED).inc()
    abort(refused.status, message=f"Refused: {refused.reason}.", headers=headers)
    raise AssertionError("abort raises")  # for the type checker: abort is not NoReturn


def record(platform: str, events: Sequence[FeedbackEvent]) -> dict[str, Any]:
    """Record the verified events, commit, then count and answer them."""
    session = current.db_session()
    received = receive_feedback(
        session,
        current.vault(),
        current.settings().policy,
        events,
        current.now(),
        alarm_rule(current.settings().links),
    )
    session.commit()
    outcomes = received.outcomes
    if received.alarms:
        metrics.UNSUBSCRIBE_ALARMS.inc(received.alarms)
    counts = Counter(outcomes)
    for outcome, count in counts.items():
        metrics.WEBHOOK_EVENTS.labels(platform, outcome).inc(count)
    for event, outcome in zip(events, outcomes, strict=True):
        if outcome is FeedbackOutcome.RECORDED and event.action is not None:
            metrics.CONSENT_CHANGES.labels(event.action.value, platform).inc()
    return {
        "received": len(events),
        **{
            outcome.value: counts[outcome]
            for outcome in FeedbackOutcome
            if outcome.value != "refused"
        },
    }
