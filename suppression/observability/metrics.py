"""Prometheus metrics. With several gunicorn workers, PROMETHEUS_MULTIPROC_DIR
(set by `suppression serve`) makes /metrics add up every worker's numbers.

Every label value comes from a fixed set: a value taken from a request (a made-up
HTTP method, a caller's free-text `source`) would add a series per distinct value,
growing /metrics and the on-disk counters without bound, and would publish what
the caller wrote (an address, say) on the page. Whatever is not known is `other`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    Counter,
    Histogram,
)

from suppression.domain.feedback import PLATFORMS, FeedbackOutcome
from suppression.domain.policy import EventAction
from suppression.domain.sources import channel_of

OTHER = "other"
MAILBOX_OUTCOMES = frozenset(("opted_out", "already_opted_out", "ignored", "unreadable"))
HTTP_METHODS = frozenset(
    ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT")
)
ACTIONS = frozenset(EventAction)


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def action_label(action: str) -> str:
    return action if action in ACTIONS else OTHER


def source_label(source: str) -> str:
    """Where a change came from, as its channel (domain/sources.py): the link pages,
    the unsubscribe mail, the webhooks, the staff channels, the API's default, the
    bulk paths by prefix; `other` for whatever else a caller wrote."""
    return channel_of(source)


def _as_is(value: str) -> str:
    return value


class BoundedLabels:
    """A metric whose label values each pass through a function onto a fixed set,
    so that no caller can feed it a value of its own."""

    def __init__(self, metric: Any, *bounds: Callable[[str], str]):
        self._metric = metric
        self._bounds = bounds

    def labels(self, *values: str) -> Any:
        return self._metric.labels(
            *(bound(value) for bound, value in zip(self._bounds, values, strict=True))
        )


# Endpoints are url rules or `unmatched`, statuses the ones this app answers.
REQUESTS = BoundedLabels(
    Counter(
        "suppression_http_requests_total",
        "HTTP requests answered",
        ["endpoint", "method", "status"],
    ),
    _as_is,
    method_label,
    _as_is,
)
LATENCY = Histogram(
    "suppression_http_request_seconds",
    "Time to answer a request",
    ["endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CHECKED = Counter(
    "suppression_checked_addresses_total", "Addresses decided by checks", ["purpose", "reason"]
)
CONSENT_CHANGES = BoundedLabels(
    Counter(
        "suppression_consent_changes_total",
        "Consent and block events recorded",
        ["action", "source"],
    ),
    action_label,
    source_label,
)
CONFIRMATION_MAILS = Counter(
    "suppression_confirmation_mails_total",
    "Double opt-in confirmation mails: sent, retrying after a failure, or given up",
    ["outcome"],
)
UNSUBSCRIBE_ALARMS = Counter(
    "suppression_unsubscribe_alarms_total",
    "Mass-unsubscribe alarms raised (one domain and campaign, many unsubscribes in minutes)",
)
# Feedback webhooks: each event's outcome (a refused request counts once).
WEBHOOK_EVENTS = BoundedLabels(
    Counter(
        "suppression_webhook_events_total",
        "Feedback webhook events by platform and outcome (recorded, unchanged, duplicate, "
        "ignored; refused: a request that failed verification)",
        ["platform", "outcome"],
    ),
    lambda platform: platform if platform in PLATFORMS else OTHER,
    lambda outcome: outcome if outcome in frozenset(FeedbackOutcome) else OTHER,
)
# The unsubscribe mailbox poller (worker/mailbox_polling.py): each message it dealt
# with, by what became of it; and passes a mailbox failure cut short.
MAILBOX_MESSAGES = BoundedLabels(
    Counter(
        "suppression_mailbox_messages_total",
        "Unsubscribe mails read from the mailbox by outcome (opted_out, already_opted_out, "
        "ignored, unreadable)",
        ["outcome"],
    ),
    lambda outcome: outcome if outcome in MAILBOX_OUTCOMES else OTHER,
)
MAILBOX_FAILURES = Counter(
    "suppression_mailbox_failures_total",
    "Mailbox passes cut short by the IMAP server (unreachable, refused, timed out)",
)
