"""Data-protection rights: export (Art. 15/20) and erasure (Art. 17)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from suppression import intake_folder, runtime
from suppression.api.auth import current_actor, protected
from suppression.api.fields import Email, Text, rfc3339
from suppression.api.presenters import client_ip, event_context
from suppression.database import flush_erased_pages
from suppression.services.access_log import AccessAction, AccessChannel, Accessor, record_access
from suppression.services.api_keys import Role
from suppression.services.erasure import ERASE_REASONS, erase_subject
from suppression.services.export import export_subject
from suppression.services.outbox import enqueue_removals
from suppression.services.subjects import find_subject

blp = Blueprint("rights", __name__, url_prefix="/v1/subjects", description="Data-protection rights")


class ExportRequestSchema(Schema):
    email = Email(required=True)
    reason = Text(
        validate=validate.Length(max=500),
        metadata={"description": "Why (e.g. the ticket of the access request)"},
    )


class EraseRequestSchema(Schema):
    email = Email(required=True)
    reason = Text(
        required=True,
        validate=validate.OneOf(ERASE_REASONS),
        metadata={"description": "request: Art. 17; child: under 13; retention; other"},
    )


class ErasureSchema(Schema):
    email = fields.String()
    status = fields.String(metadata={"description": "done, or pending until destinations confirm"})
    reason = fields.String()
    erased_at = fields.String()


@blp.route("/export")
class Export(MethodView):
    @protected(blp, Role.STAFF)
    @blp.arguments(ExportRequestSchema)
    @blp.response(200)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Every stored fact about one address, machine-readable. The export is
        itself written to the access log (and so appears in the next export)."""
        session = runtime.db_session()
        intake_folder.fold_for_address(session, data["email"])
        subject = find_subject(session, runtime.vault(), data["email"])
        now = runtime.now()
        document = export_subject(
            session, runtime.vault(), data["email"], subject, runtime.settings().policy, now
        )
        record_access(
            session,
            Accessor(current_actor(), AccessChannel.API, client_ip()),
            AccessAction.EXPORT,
            subject.id if subject else None,
            now,
            data.get("reason"),
        )
        session.commit()
        return document


@blp.route("/erase")
class Erase(MethodView):
    @protected(blp)
    @blp.arguments(EraseRequestSchema)
    @blp.response(200, ErasureSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Erase one address: personal data goes, the keyed index stays (`erased`).

        With destinations enabled the answer is `pending` until every destination
        has confirmed the removal; the worker then drops the personal data (`done`).
        """
        session = runtime.db_session()
        # A pending one-click holds evidence (IP, user agent): folded first, it is
        # erased with the rest.
        intake_folder.fold_for_address(session, data["email"])
        result = erase_subject(
            session,
            runtime.vault(),
            data["email"],
            data["reason"],
            event_context({"source": data["reason"]}),
            enqueue_removals=enqueue_removals,
        )
        session.commit()
        runtime.close_sessions()  # the checkpoint must see no open reader of ours
        flush_erased_pages(runtime.runtime().engine)
        return {
            "email": data["email"],
            "status": result.status,
            "reason": result.reason,
            "erased_at": rfc3339(result.erased_at),
        }
