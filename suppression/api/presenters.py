"""Turning request data into service arguments and service results into documents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import request
from flask_smorest import abort

from suppression.api.auth import current_actor
from suppression.api.fields import rfc3339
from suppression.app import current
from suppression.domain.errors import InvalidInput
from suppression.domain.text import storable
from suppression.services.consents.recording import EventContext
from suppression.services.consents.subjects import SubjectView

MAX_CLOCK_SKEW = timedelta(minutes=5)


def client_ip() -> str | None:
    """The client's address (behind proxies, as TRUSTED_PROXY_HOPS finds it:
    suppression/app/proxies.py)."""
    return request.remote_addr


def user_agent() -> str | None:
    """The User-Agent header as evidence: at most 500 characters, and storable (a
    client may send NUL, which PostgreSQL refuses, and bytes that are not text)."""
    agent = request.user_agent.string
    return storable(agent[:500]) if agent else None


def event_context(data: dict[str, Any], default_source: str = "api") -> EventContext:
    now = current.now()
    occurred_at = data.get("occurred_at") or now
    if occurred_at > now + MAX_CLOCK_SKEW:
        # A future time would pin the state: no real change could ever be newer.
        raise InvalidInput(
            "occurred_at is in the future",
            {"occurred_at": ["Must not be later than now (5 minutes of clock skew allowed)."]},
        )
    # A time within the skew but ahead of ours is taken as now: an event dated after
    # its recording would outrank a real change made in the minutes between (the
    # person's opt-out), as the state only ever moves to a newer event.
    occurred_at = min(occurred_at, now)
    return EventContext(
        actor=current_actor(),
        source=data.get("source") or default_source,
        occurred_at=occurred_at,
        recorded_at=now,
        ip=client_ip(),
        user_agent=user_agent(),
        campaign=data.get("campaign"),
        notice_version=data.get("notice_version"),
        evidence=data.get("evidence"),
    )


def subject_document(view: SubjectView) -> dict[str, Any]:
    return {
        "email": view.email,
        "country": view.jurisdiction.country,
        "country_source": view.jurisdiction.source_label,
        "consents": {
            purpose: {
                "status": state.status,
                "changed_at": rfc3339(state.changed_at),
                "source": state.source,
            }
            for purpose, state in sorted(view.consents.items())
        },
        "blocks": [
            {"kind": b.kind, "since": rfc3339(b.since), "source": b.source} for b in view.blocks
        ],
        "decisions": {
            purpose: {"sendable": d.sendable, "reason": d.reason_code}
            for purpose, d in view.decisions.items()
        },
        "erased_at": rfc3339(view.erased_at),
    }


CSV_TYPES = {"text/csv", "application/csv", "text/plain", "application/octet-stream"}
# One CSV field of a documented body: no quote, separator, line break or NUL, and
# short (the csv module refuses a field over 131,072 characters).
CSV_FIELD = '[^\\u0000\\r\\n",]{0,254}'


def csv_body(description: str, pattern: str, example: str) -> dict[str, Any]:
    """The OpenAPI request body of a CSV upload; the view reads request.stream."""
    return {
        "required": True,
        "description": description,
        "content": {
            "text/csv": {"schema": {"type": "string", "pattern": pattern, "example": example}}
        },
    }


def require_csv_body() -> None:
    """415 in the error shape unless the body is declared as CSV (or plain text)."""
    if request.mimetype not in CSV_TYPES:
        abort(415, message=f"Send the list as text/csv, not {request.mimetype or 'nothing'}.")
