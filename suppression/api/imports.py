"""Bulk import of suppression lists, and the hashed suppression list (admin)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from flask import Response, request, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields

from suppression.api.auth import current_actor, protected
from suppression.api.fields import Purpose, rfc3339
from suppression.api.presenters import CSV_FIELD, csv_body, require_csv_body
from suppression.api.schemas import QuerySchema
from suppression.app import current
from suppression.services.checks.suppression_list import suppression_rows
from suppression.services.consents.recording import check_purpose
from suppression.services.imports.importer import import_csv
from suppression.services.imports.rows import COLUMNS
from suppression.store.engines import read_only_session

blp = Blueprint("imports", __name__, url_prefix="/v1", description="Bulk import and export")


IMPORT_CSV_BODY = csv_body(
    "A header row naming the columns: `email` (or `email_sha256`, the SHA-256 hex of "
    "the trimmed, lower-cased address, for a list hashed elsewhere), and optionally "
    "`status` (opted_out, the default, or opted_in), `purpose` (a configured one; "
    "default all), `country` (ISO 3166-1 alpha-2), `occurred_at` (ISO 8601, not in "
    "the future) and `source`; then one row a line. A bad row is answered in "
    "`rejected` with its line and never stops the good ones. UTF-8, a BOM allowed.",
    "^(?:email|email_sha256)(?:,(?:{columns}))*(?:\\r?\\n{field}(?:,{field})*)*\\r?\\n?$".format(
        columns="|".join(c for c in COLUMNS if not c.startswith("email")), field=CSV_FIELD
    ),
    "email,status,purpose,country,occurred_at,source\n"
    "jane@example.com,opted_out,all,US,2026-11-01T09:30:00Z,old_crm\n",
)


class RejectedSchema(Schema):
    line = fields.Integer()
    error = fields.String()


class ImportResultSchema(Schema):
    import_id = fields.Integer()
    rows = fields.Integer()
    imported = fields.Integer()
    rejected = fields.List(
        fields.Nested(RejectedSchema),
        metadata={"description": "The first 100 rows refused, by line"},
    )
    rejected_total = fields.Integer(metadata={"description": "All the rows refused"})


class SuppressionsQuerySchema(QuerySchema):
    purpose = Purpose(load_default="email_marketing")


@blp.route("/imports")
class Imports(MethodView):
    @protected(blp)
    @blp.doc(requestBody=IMPORT_CSV_BODY)
    @blp.response(200, ImportResultSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Malformed CSV or not UTF-8")
    @blp.alt_response(415, response="DEFAULT_ERROR", description="The body is not CSV")
    def post(self) -> dict[str, Any]:
        """Import a suppression list (CSV: `email` or `email_sha256`, and optionally
        `status` (default opted_out), `purpose` (default all), `country`,
        `occurred_at`, `source`). Bad rows are reported by line and never written;
        an opt-in row never re-subscribes an opted-out, complained or erased address."""
        require_csv_body()
        session = current.db_session()
        steps = import_csv(
            session,
            current.vault(),
            request.stream,
            current.settings().purposes,
            current_actor(),
            current.now(),
        )
        for step in steps:
            session.commit()  # each chunk, so a dropped request keeps what it wrote
            if step.finished:
                run, report = step.run, step.report
        return {
            "import_id": run.id,
            "rows": report.rows,
            "imported": report.imported,
            "rejected": [{"line": line, "error": error} for line, error in report.rejected],
            "rejected_total": report.rejected_total,
        }


@blp.route("/suppressions.csv")
class Suppressions(MethodView):
    @protected(blp)
    @blp.arguments(SuppressionsQuerySchema, location="query")
    @blp.response(200, content_type="text/csv")
    def get(self, query: dict[str, Any]) -> Response:
        """The suppression list as `email_sha256,reason,changed_at` (SHA-256 of the
        trimmed, lower-cased address), for handing to third parties."""
        purpose = check_purpose(query["purpose"], current.settings().purposes, allow_all=False)
        return Response(stream_with_context(_stream(purpose)), mimetype="text/csv")


def _stream(purpose: str) -> Iterator[str]:
    # Its own session, closed when the stream ends: the request's sessions are
    # closed at teardown, before a streamed body is produced.
    session = read_only_session(current.runtime().sessions)
    try:
        yield from _csv(suppression_rows(session, current.vault(), purpose))
    finally:
        session.close()


def _csv(rows: Iterator[tuple[str, str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email_sha256", "reason", "changed_at"])
    for count, (digest, reason, changed_at) in enumerate(rows, start=1):
        writer.writerow([digest, reason, rfc3339(changed_at)])
        if count % 1000 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
