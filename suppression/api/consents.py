"""POST /v1/consents: one consent change."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from suppression import metrics, runtime
from suppression.api.auth import protected
from suppression.api.presenters import event_context, subject_document
from suppression.api.schemas import ConsentCreateSchema, SubjectStateSchema
from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ConsentStatus
from suppression.services.api_keys import Role
from suppression.services.consents import check_purpose, record_consent
from suppression.services.subjects import view_subject

blp = Blueprint("consents", __name__, url_prefix="/v1/consents", description="Consent changes")


@blp.route("")
class Consents(MethodView):
    @protected(blp, Role.SENDER, Role.STAFF)
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, SubjectStateSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Record one opt-in or opt-out (`purpose` may be `all`)."""
        settings = runtime.settings()
        purpose = check_purpose(data["purpose"], settings.purposes)
        ctx = event_context(data)
        session = runtime.db_session()
        subject = record_consent(
            session,
            runtime.vault(),
            data["email"],
            purpose,
            ConsentStatus(data["status"]),
            ctx,
            country=data.get("country"),
            country_source=CountrySource.from_label(data["country_source"]),
        )
        document = subject_document(
            view_subject(session, data["email"], subject, settings.policy, ctx.recorded_at)
        )
        session.commit()
        metrics.CONSENT_CHANGES.labels(data["status"], ctx.source[:40]).inc()
        return document
