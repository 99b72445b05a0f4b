"""What a sending platform's feedback webhook says, once its signature is checked.

Each platform (api/inbound_*.py verifies, domain/feedback_*.py reads) turns its
notification into FeedbackEvents: the platform's own event id (what makes a
retried delivery harmless), its own event type, what the service does about it
(a hard bounce, a complaint, an opt-out, or nothing), the address as the
platform wrote it, and a few platform fields kept as evidence (never a body).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from suppression.domain.text import storable

# The platforms, which are also the `source` of the events they cause.
SES, SENDGRID, MAILGUN, POSTMARK = "ses", "sendgrid", "mailgun", "postmark"
PLATFORMS = (SES, SENDGRID, MAILGUN, POSTMARK)
MAX_EVENT_ID = 200  # longer ids are refused: no platform documents one this long
MAX_DETAIL_CHARS = 500  # a bounce's diagnostic can be long; evidence keeps its start


class FeedbackAction(StrEnum):
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    OPT_OUT = "opted_out"


class FeedbackOutcome(StrEnum):
    """What became of one event (and the `outcome` label of the webhook metric)."""

    RECORDED = "recorded"  # a block or opt-out was recorded
    UNCHANGED = "unchanged"  # acted on, but the address was opted out or erased already
    DUPLICATE = "duplicate"  # this event id was received before: nothing done again
    IGNORED = "ignored"  # a kind the service does not act on (delivered, soft bounce...)
    REFUSED = "refused"  # the request failed verification: nothing of it was read


@dataclass(frozen=True)
class FeedbackEvent:
    platform: str
    event_id: str
    event_type: str  # the platform's own name for it: "Bounce", "spamreport", ...
    action: FeedbackAction | None  # None: nothing to do
    address: str | None  # as the platform sent it; canonicalised by the service
    occurred_at: datetime | None  # when the platform says it happened (UTC)
    details: Mapping[str, str] = field(default_factory=dict)  # evidence: bounce type, code...
    purpose: str | None = None  # an opt-out of one purpose; None: of every purpose


class FeedbackRefused(Exception):
    """A request to refuse whole: `status` 401 (unverified, stale, replayed) or 400
    (verified but unreadable); `reason` says which, in words."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def require_fresh(signed_at: datetime, now: datetime, max_age_seconds: int) -> None:
    """Refuse a signature made over `max_age_seconds` ago, or that far in the future
    (a clock that far off is no more trustworthy than an old signature)."""
    age = now - signed_at
    if abs(age) > timedelta(seconds=max_age_seconds):
        raise FeedbackRefused(
            401,
            f"the signature's timestamp is {int(age.total_seconds())} s old; "
            f"at most {max_age_seconds} s is accepted",
        )


def require_event_id(value: object, what: str) -> str:
    """The platform's event id, as a string; FeedbackRefused(400) when it is missing."""
    text = str(value).strip() if isinstance(value, str | int) else ""
    if not text or len(text) > MAX_EVENT_ID or storable(text) != text:
        raise FeedbackRefused(400, f"{what} has no usable event id")
    return text


def detail(value: object) -> str | None:
    """A platform field as evidence: text, capped; None for nothing."""
    if value is None or value == "":
        return None
    return storable(str(value)[:MAX_DETAIL_CHARS])
