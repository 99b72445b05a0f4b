"""POST /v1/consents: one consent change."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy.orm import Session

from suppression.api.auth import is_staff_key, protected
from suppression.api.presenters import event_context, subject_document
from suppression.api.schemas import ConsentCreateSchema, SubjectStateSchema
from suppression.app import current, folding
from suppression.domain.errors import Conflict
from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ConsentStatus
from suppression.observability import metrics
from suppression.services.consents.recording import (
    EventContext,
    check_purpose,
    record_consent,
    replaces_declared_country,
)
from suppression.services.consents.resubscribe import (
    OptInAuthority,
    clear_for_staff_opt_in,
    materialise_hashed_suppression,
    opt_in_conflict,
)
from suppression.services.consents.subjects import find_subject, view_subject
from suppression.services.staff.api_keys import Role

blp = Blueprint("consents", __name__, url_prefix="/v1/consents", description="Consent changes")


@blp.route("")
class Consents(MethodView):
    @protected(blp, Role.SENDER, Role.STAFF)
    @blp.arguments(ConsentCreateSchema)
    @blp.response(201, SubjectStateSchema)
    @blp.alt_response(
        409, response="DEFAULT_ERROR", description="A re-subscribe this key may not make"
    )
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Record one opt-in or opt-out (`purpose` may be `all`).

        An opt-in over an opt-out, an erasure or a complaint answers 409 unless a
        staff or admin key sends it with `evidence` (the person's own opt-in goes
        through the preference page). A sender key declaring a country other than
        the one already declared answers 409 too: only staff may change it.
        """
        settings = current.settings()
        purpose = check_purpose(data["purpose"], settings.purposes)
        ctx = event_context(data)
        session = current.db_session()
        # A pending one-click is an opt-out already: the opt-in guard must see it.
        if folded := folding.fold_for_address(session, data["email"]):
            session.commit()
            folding.count(folded)
        country_source = CountrySource.from_label(data["country_source"])
        if country_source == CountrySource.DECLARED and "country" in data:
            _guard_declared_country(session, data["email"], data["country"])
        status = ConsentStatus(data["status"])
        if status == ConsentStatus.OPTED_IN:
            _guard_opt_in(session, data["email"], purpose, ctx)
        subject = record_consent(
            session,
            current.vault(),
            data["email"],
            purpose,
            status,
            ctx,
            country=data.get("country"),
            country_source=country_source,
        )
        document = subject_document(
            view_subject(session, data["email"], subject, settings.policy, ctx.recorded_at)
        )
        session.commit()
        metrics.CONSENT_CHANGES.labels(data["status"], ctx.source).inc()
        return document


def _guard_opt_in(session: Session, canonical: str, purpose: str, ctx: EventContext) -> None:
    """409 when this key may not turn the address back to sendable (resubscribe.py)."""
    subject = find_subject(session, current.vault(), canonical)
    authority = OptInAuthority.STAFF if is_staff_key() else OptInAuthority.SENDER
    conflict = opt_in_conflict(
        session, subject, canonical, purpose, ctx.occurred_at, authority, bool(ctx.evidence)
    )
    if conflict is not None:
        raise Conflict(conflict, {"status": ["An opt-in is not accepted here."]})
    if authority == OptInAuthority.STAFF:
        if subject is not None:
            clear_for_staff_opt_in(session, current.vault(), subject, canonical, ctx)
        else:
            materialise_hashed_suppression(session, current.vault(), canonical, ctx)


def _guard_declared_country(session: Session, canonical: str, country: str) -> None:
    """409 when a sender key would replace a country the person or staff declared:
    moving a person out of the EEA, say, would make them sendable."""
    if is_staff_key():
        return
    if replaces_declared_country(find_subject(session, current.vault(), canonical), country):
        raise Conflict(
            "A different country is declared for this address; only staff can change it.",
            {"country": ["A sender key may not replace a declared country."]},
        )
