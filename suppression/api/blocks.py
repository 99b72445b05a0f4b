"""POST /v1/blocks: bounces, complaints, restriction and objection (single or batch)."""

from __future__ import annotations

from typing import Any

from flask import jsonify
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from suppression.api.auth import is_staff_key, protected
from suppression.api.presenters import event_context, subject_document
from suppression.api.schemas import BatchRecordedSchema, BlockRequestSchema, SubjectStateSchema
from suppression.app import current
from suppression.domain.policy import EventAction
from suppression.observability import metrics
from suppression.services.consents.recording import BlockEvent, record_block, record_blocks
from suppression.services.consents.subjects import view_subject
from suppression.services.staff.api_keys import Role

blp = Blueprint(
    "blocks", __name__, url_prefix="/v1/blocks", description="Delivery and rights events"
)
_LIFT_REFUSED = "A sender key may not send lift_restriction."


@blp.route("")
class Blocks(MethodView):
    @protected(blp, Role.SENDER, Role.STAFF)
    @blp.arguments(BlockRequestSchema)
    @blp.response(201, SubjectStateSchema)
    @blp.alt_response(200, schema=BatchRecordedSchema, description="The batch form")
    def post(self, data: dict[str, Any]) -> Any:
        """Record one event → 201 with the state; `{"events": [...]}` → 200 `{"recorded": n}`.

        Only staff and admin keys may send `lift_restriction`: from a sender key it
        is 403, and a batch holding one is refused whole.
        """
        _refuse_lifts_from_senders(data)
        session = current.db_session()
        vault = current.vault()
        if "events" in data:
            record_blocks(
                session,
                vault,
                [
                    BlockEvent(e["email"], e["kind"], event_context(e, "api"), e.get("country"))
                    for e in data["events"]
                ],
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
                session, data["email"], subject, current.settings().policy, ctx.recorded_at
            )
        )
        session.commit()
        metrics.CONSENT_CHANGES.labels(data["kind"], ctx.source).inc()
        return document, 201


def _refuse_lifts_from_senders(data: dict[str, Any]) -> None:
    """A restriction (GDPR Art. 18) is the person's; a platform may not end it."""
    if is_staff_key():
        return
    if "events" not in data:
        if data["kind"] == EventAction.LIFT_RESTRICTION:
            abort(
                403,
                message="Only a staff or admin key may lift a restriction.",
                errors={"json": {"kind": [_LIFT_REFUSED]}},
            )
        return
    positions = {
        position: {"kind": [_LIFT_REFUSED]}
        for position, event in enumerate(data["events"])
        if event["kind"] == EventAction.LIFT_RESTRICTION
    }
    if positions:
        abort(
            403,
            message=(
                "Only a staff or admin key may lift a restriction; "
                "no event of this batch was recorded."
            ),
            errors={"json": {"events": positions}},
        )
