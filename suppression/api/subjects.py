"""POST /v1/subjects/lookup: one address's state, decisions and whole history.

Every lookup, found or not, is written to the access log and committed before
the answer goes out: a lookup that cannot be logged is not answered.
"""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields, validate

from suppression.api.auth import current_actor, protected
from suppression.api.fields import Email, Text
from suppression.api.presenters import client_ip, subject_document
from suppression.api.schemas import SubjectStateSchema
from suppression.app import current, folding
from suppression.services.consents.history import subject_events
from suppression.services.consents.subjects import find_subject, view_subject
from suppression.services.rights.export import event_document
from suppression.services.staff.access_log import (
    MAX_REASON,
    AccessAction,
    AccessChannel,
    Accessor,
    record_access,
)
from suppression.services.staff.api_keys import Role

blp = Blueprint("subjects", __name__, url_prefix="/v1/subjects", description="One subject (staff)")


class LookupSchema(Schema):
    email = Email(required=True)
    reason = Text(
        validate=validate.Length(max=MAX_REASON),
        metadata={"description": "Why you look (a ticket, a complaint); kept in the access log"},
    )


class EventSchema(Schema):
    id = fields.Integer()
    action = fields.String()
    purpose = fields.String(allow_none=True)
    source = fields.String()
    actor = fields.String()
    occurred_at = fields.String()
    recorded_at = fields.String()
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    campaign = fields.String(allow_none=True)
    notice_version = fields.String(allow_none=True)
    country = fields.String(allow_none=True)
    evidence = fields.Dict(allow_none=True)
    evidence_unreadable = fields.Boolean(
        metadata={"description": "Present (true) when the sealed evidence opens with no held key"}
    )


class LookupResultSchema(SubjectStateSchema):
    events = fields.List(fields.Nested(EventSchema), metadata={"description": "Newest first"})


@blp.route("/lookup")
class Lookup(MethodView):
    @protected(blp, Role.STAFF)
    @blp.arguments(LookupSchema)
    @blp.response(200, LookupResultSchema)
    @blp.alt_response(404, response="DEFAULT_ERROR", description="No such address is stored")
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Look up one address: state, decisions and every event (newest first).

        The lookup is recorded in the access log (who, which subject, when, why).
        """
        session = current.db_session()
        if folded := folding.fold_for_address(session, data["email"]):
            session.commit()
            folding.count(folded)
        now = current.now()
        accessor = Accessor(current_actor(), AccessChannel.API, client_ip())
        subject = find_subject(session, current.vault(), data["email"])
        record_access(
            session,
            accessor,
            AccessAction.LOOKUP,
            subject.id if subject else None,
            now,
            data.get("reason"),
        )
        if subject is None:
            session.commit()
            abort(404, message="No subject with this address is stored.")
        assert subject is not None, "abort raised"  # flask_smorest's abort is untyped
        document = subject_document(
            view_subject(session, data["email"], subject, current.settings().policy, now)
        )
        vault = current.vault()
        document["events"] = [event_document(vault, e) for e in subject_events(session, subject.id)]
        session.commit()
        return document
