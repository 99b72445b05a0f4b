"""POST /v1/relationships: purchases and inquiries, the basis of soft opt-in."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from suppression.api.auth import protected
from suppression.api.presenters import event_context, subject_document
from suppression.api.schemas import RelationshipSchema, SubjectStateSchema
from suppression.app import current
from suppression.services.consents.recording import record_relationship
from suppression.services.consents.subjects import view_subject
from suppression.services.staff.api_keys import Role

blp = Blueprint(
    "relationships",
    __name__,
    url_prefix="/v1/relationships",
    description="Customer relationships (implied consent where settings allow it)",
)


@blp.route("")
class Relationships(MethodView):
    @protected(blp, Role.SENDER, Role.STAFF)
    @blp.arguments(RelationshipSchema)
    @blp.response(201, SubjectStateSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Record a purchase or an inquiry (CASL implied consent: 2 years / 6 months)."""
        session = current.db_session()
        ctx = event_context(data)
        subject = record_relationship(session, current.vault(), data["email"], data["kind"], ctx)
        document = subject_document(
            view_subject(
                session, data["email"], subject, current.settings().policy, ctx.recorded_at
            )
        )
        session.commit()
        return document
