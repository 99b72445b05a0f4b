"""Prometheus metrics. With several gunicorn workers, PROMETHEUS_MULTIPROC_DIR
(set by `suppression serve`) makes /metrics add up every worker's numbers."""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter(
    "suppression_http_requests_total", "HTTP requests answered", ["endpoint", "method", "status"]
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
CONSENT_CHANGES = Counter(
    "suppression_consent_changes_total", "Consent and block events recorded", ["action", "source"]
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


def render() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest()
    return Response(body, content_type=CONTENT_TYPE_LATEST)


def install(app: Flask) -> None:
    @app.before_request
    def start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def observe(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        # Public links carry tokens in the path; the rule, not the path, is the label.
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        started = g.get("request_started")
        if started is not None:
            LATENCY.labels(endpoint).observe(time.perf_counter() - started)
        return response
