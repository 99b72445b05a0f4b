"""POST /v1/blocks: bounces, complaints, restriction and objection (single or batch)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint

from suppression import metrics, runtime
from suppression.api.auth import protected
from suppression.api.presenters import event_context, subject_document
from suppression.api.schemas import BatchRecordedSchema, BlockRequestSchema, SubjectStateSchema
from suppression.services.api_keys import Role
from suppression.services.consents import record_block
from suppression.services.subjects import view_subject

blp = Blueprint(
    "blocks", __name__, url_prefix="/v1/blocks", description="Delivery and rights events"
)


@blp.route("")
class Blocks(MethodView):
    @protected(blp, Role.SENDER, Role.STAFF)
    @blp.arguments(BlockRequestSchema)
    @blp.response(201, SubjectStateSchema)
    @blp.alt_response(200, schema=BatchRecordedSchema, description="The batch form")
    def post(self, data: dict[str, Any]) -> Any:
        """Record one event → 201 with the state; `{"events": [...]}` → 200 `{"recorded": n}`."""
        session = runtime.db_session()
        vault = runtime.vault()
        if "events" in data:
            contexts = [event_context(event, "api") for event in data["events"]]
            for event, ctx in zip(data["events"], contexts, strict=True):
                record_block(
                    session, vault, event["email"], event["kind"], ctx, event.get("country")
                )
            session.commit()
            for event in data["events"]:
                metrics.CONSENT_CHANGES.labels(event["kind"], "api").inc()
            # A Response passes the 201 schema by: the batch answers its own shape.
            return jsonify({"recorded": len(data["events"])})
        ctx = event_context(data, "api")
        subject = record_block(
            session, vault, data["email"], data["kind"], ctx, data.get("country")
        )
        document = subject_document(
            view_subject(
                session, data["email"], subject, runtime.settings().policy, ctx.recorded_at
            )
        )
        session.commit()
        metrics.CONSENT_CHANGES.labels(data["kind"], ctx.source[:40]).inc()
        return document, 201
