"""GET /v1/access-log (admin): who looked at which subject, newest first."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from suppression.api.auth import protected
from suppression.api.fields import Text, rfc3339
from suppression.api.schemas import QuerySchema
from suppression.app import current
from suppression.services.staff.access_log import PAGE_SIZE, list_access
from suppression.store.models import AccessLogEntry

blp = Blueprint(
    "access_log", __name__, url_prefix="/v1/access-log", description="Access log (admin)"
)


# Ids are 64-bit signed integers in both databases: a larger number is bad input,
# not a query the driver cannot even bind.
MAX_ID = 2**63 - 1


class AccessQuerySchema(QuerySchema):
    limit = fields.Integer(load_default=PAGE_SIZE, validate=validate.Range(min=1, max=1000))
    before = fields.Integer(
        validate=validate.Range(min=1, max=MAX_ID),
        metadata={"description": "Entries older than this id (from `next_before`)"},
    )
    actor = Text(
        validate=validate.Length(min=1, max=200),
        metadata={"example": "staff:alice", "description": "staff:<username> or api_key:<name>"},
    )
    subject_id = fields.Integer(validate=validate.Range(min=1, max=MAX_ID))


class AccessEntrySchema(Schema):
    id = fields.Integer()
    occurred_at = fields.String()
    actor = fields.String()
    channel = fields.String(metadata={"description": "page, api or cli"})
    action = fields.String(
        metadata={
            "description": "lookup (by address), view (by id), export (everything) or "
            "list_check (a whole send list: no subject, its purpose and row count)"
        }
    )
    subject_id = fields.Integer(allow_none=True, metadata={"description": "null: not found"})
    reason = fields.String(allow_none=True)
    ip = fields.String(allow_none=True)
    purpose = fields.String(allow_none=True, metadata={"description": "a list check's purpose"})
    row_count = fields.Integer(
        allow_none=True, metadata={"description": "a list check's number of rows"}
    )


class AccessPageSchema(Schema):
    entries = fields.List(fields.Nested(AccessEntrySchema))
    next_before = fields.Integer(allow_none=True)


def entry_document(entry: AccessLogEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "occurred_at": rfc3339(entry.occurred_at),
        "actor": entry.actor,
        "channel": entry.channel,
        "action": entry.action,
        "subject_id": entry.subject_id,
        "reason": entry.reason,
        "ip": entry.ip,
        "purpose": entry.purpose,
        "row_count": entry.row_count,
    }


@blp.route("")
class AccessLog(MethodView):
    @protected(blp)
    @blp.arguments(AccessQuerySchema, location="query")
    @blp.response(200, AccessPageSchema)
    def get(self, query: dict[str, Any]) -> dict[str, Any]:
        """The access log, newest first, a page at a time."""
        page = list_access(
            current.read_session(),
            limit=query["limit"],
            before=query.get("before"),
            actor=query.get("actor"),
            subject_id=query.get("subject_id"),
        )
        return {
            "entries": [entry_document(e) for e in page.entries],
            "next_before": page.next_before,
        }
