"""Data-protection rights: export (Art. 15/20) and erasure (Art. 17)."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from suppression.api.auth import current_actor, protected
from suppression.api.fields import Email, Text, rfc3339
from suppression.api.presenters import client_ip, event_context
from suppression.app import current, folding
from suppression.services.consents.subjects import find_subject
from suppression.services.destinations.enqueue import enqueue_removals
from suppression.services.rights.erasure import ERASE_REASONS, erase_subject
from suppression.services.rights.export import export_subject
from suppression.services.staff.access_log import (
    AccessAction,
    AccessChannel,
    Accessor,
    record_access,
)
from suppression.services.staff.api_keys import Role
from suppression.store.engines import flush_erased_pages

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
        session = current.db_session()
        if folded := folding.fold_for_address(session, data["email"]):
            session.commit()
            folding.count(folded)
        subject = find_subject(session, current.vault(), data["email"])
        now = current.now()
        document = export_subject(
            session, current.vault(), data["email"], subject, current.settings().policy, now
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
        session = current.db_session()
        # A pending one-click holds evidence (IP, user agent): folded first, it is
        # erased with the rest.
        if folded := folding.fold_for_address(session, data["email"]):
            session.commit()
            folding.count(folded)
        result = erase_subject(
            session,
            current.vault(),
            data["email"],
            data["reason"],
            event_context({"source": data["reason"]}),
            enqueue_removals=enqueue_removals,
        )
        session.commit()
        current.close_sessions()  # the checkpoint must see no open reader of ours
        flush_erased_pages(current.runtime().engine)
        return {
            "email": data["email"],
            "status": result.status,
            "reason": result.reason,
            "erased_at": rfc3339(result.erased_at),
        }
