"""Destinations (admin): their status, and a sync pass on demand.

GET /v1/destinations lists every destination the service knows (Keap, Meta,
Google, LinkedIn, Microsoft) with what waits, what was parked, the last success
and the last error. POST /v1/destinations/<name>/sync runs one pass for one
destination now; the pushes run outside any database transaction.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from suppression.api.auth import protected
from suppression.api.fields import rfc3339
from suppression.api.schemas import QuerySchema
from suppression.app import current
from suppression.connectors.settings import DESTINATION_NAMES
from suppression.domain.errors import Conflict, NotFound
from suppression.services.destinations.registry import DestinationStatus, destination_statuses
from suppression.worker.destination_sync import DestinationSync

# A request drains at most this many batches; the worker takes the rest.
MAX_BATCHES = 20

blp = Blueprint(
    "destinations", __name__, url_prefix="/v1/destinations", description="Destinations (admin)"
)


class DestinationSchema(Schema):
    name = fields.String(metadata={"example": "meta"})
    kind = fields.String(metadata={"example": "meta_custom_audience"})
    enabled = fields.Boolean()
    pending = fields.Integer(metadata={"description": "Rows waiting or in flight"})
    failed = fields.Integer(metadata={"description": "Rows parked after too many attempts"})
    overdue = fields.Integer(
        metadata={"description": "Rows waiting longer than SYNC_DEADLINE_HOURS (the alarm)"}
    )
    oldest_pending_at = fields.String(allow_none=True)
    last_success_at = fields.String(allow_none=True)
    last_error = fields.String(allow_none=True)
    last_error_at = fields.String(allow_none=True)
    paused_until = fields.String(
        allow_none=True, metadata={"description": "The platform asked us to wait (429)"}
    )
    warning = fields.String(
        allow_none=True,
        metadata={"description": "A setting to change soon (an API version near its sunset)"},
    )


class SyncQuerySchema(QuerySchema):
    full = fields.Boolean(
        load_default=False,
        metadata={"description": "Reconcile first: queue everyone not confirmed yet"},
    )


class SyncReportSchema(Schema):
    destination = fields.String()
    claimed = fields.Integer()
    suppressed = fields.Integer(metadata={"description": "Suppressions the platform confirmed"})
    restored = fields.Integer(metadata={"description": "Exclusion-list removals confirmed"})
    accepted = fields.Integer(
        metadata={"description": "Pushes the platform accepted and processes later"}
    )
    processing = fields.Integer(
        metadata={"description": "Rows whose request the platform is still processing"}
    )
    not_found = fields.Integer(metadata={"description": "The platform holds no such address"})
    unchanged = fields.Integer(metadata={"description": "Nothing to push (sendable, or done)"})
    no_address = fields.Integer(metadata={"description": "Erased before it could be pushed"})
    retrying = fields.Integer()
    parked = fields.Integer()
    reconciled = fields.Integer(metadata={"description": "Rows a full reconcile queued"})
    pending = fields.Integer(
        metadata={"description": "Rows still waiting (retrying, paused, or left for the worker)"}
    )
    paused_until = fields.String(allow_none=True)
    error = fields.String(allow_none=True)


def status_document(status: DestinationStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "kind": status.kind,
        "enabled": status.enabled,
        "pending": status.pending,
        "failed": status.failed,
        "overdue": status.overdue,
        "oldest_pending_at": rfc3339(status.oldest_pending_at),
        "last_success_at": rfc3339(status.last_success_at),
        "last_error": status.last_error,
        "last_error_at": rfc3339(status.last_error_at),
        "paused_until": rfc3339(status.paused_until),
        "warning": status.warning,
    }


@blp.route("")
class Destinations(MethodView):
    @protected(blp)
    @blp.response(200, DestinationSchema(many=True))
    def get(self) -> list[dict[str, Any]]:
        """Every destination with its queue and its health."""
        settings = current.settings()
        statuses = destination_statuses(
            current.read_session(), settings.destinations, current.now()
        )
        return [status_document(status) for status in statuses]


@blp.route(
    "/<string:name>/sync",
    parameters=[
        {
            "in": "path",
            "name": "name",
            "description": "A destination; one not enabled answers 409",
            "schema": {"type": "string", "enum": list(DESTINATION_NAMES)},
        }
    ],
)
class DestinationSyncNow(MethodView):
    @protected(blp)
    @blp.arguments(SyncQuerySchema, location="query")
    @blp.response(200, SyncReportSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR")
    @blp.alt_response(409, response="DEFAULT_ERROR")
    def post(self, query: dict[str, Any], name: str) -> dict[str, Any]:
        """Run one sync pass for this destination now; answers what was pushed."""
        settings = current.settings()
        if name not in DESTINATION_NAMES:
            raise NotFound(
                f"no destination named {name!r}",
                {"name": [f"Must be one of: {', '.join(DESTINATION_NAMES)}."]},
            )
        if not settings.destinations.is_enabled(name):
            raise Conflict(f"destination {name!r} is not enabled; see docs/destinations.md")
        state = current.runtime()
        # It answers an HTTP request: a failed call is recorded, never waited out here.
        worker = DestinationSync(
            state.sessions, state.vault, settings, clock=state.clock, in_place_retries=0
        )
        try:
            (report,) = worker.run_pass([name], full=query["full"], max_batches=MAX_BATCHES)
        finally:
            worker.close()
        document = report.as_dict()
        document["paused_until"] = rfc3339(report.paused_until)
        return document
