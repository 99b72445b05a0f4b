"""Search one address, read its subject page, and change its consent.

The address travels only in POST bodies. A search that finds the address
redirects to /admin/subjects/<id>: the URL names an internal id, never the
address. Every search and every opening of a subject page is in the access log
(a page that follows straight from a logged search or a change is not logged
twice). Each change is an event whose actor is `staff:<username>`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy.orm import Session

from suppression.app import current, folding
from suppression.domain.addresses import mask
from suppression.domain.errors import Conflict, SuppressionError
from suppression.domain.jurisdictions import CountrySource, is_eea
from suppression.domain.policy import ALL_PURPOSES, ConsentStatus
from suppression.domain.sources import OTHER_CHANNEL, channel_label, channel_of
from suppression.services.consents.evidence import open_evidence
from suppression.services.consents.history import subject_events
from suppression.services.consents.recording import (
    EventContext,
    record_block,
    record_consent,
    set_country,
)
from suppression.services.consents.resubscribe import (
    OptInAuthority,
    clear_for_staff_opt_in,
    opt_in_conflict,
)
from suppression.services.consents.subjects import SubjectView, find_subject, view_subject
from suppression.services.links.opt_in_requests import requests_for
from suppression.services.staff.access_log import (
    AccessAction,
    AccessChannel,
    Accessor,
    record_access,
)
from suppression.store.models import OptInRequest, Subject
from suppression.web.staff import forms
from suppression.web.staff.auth import SHOWN_KEY, actor
from suppression.web.staff.blueprint import bp

REASON_TEXT = {
    None: "may be sent",
    "invalid": "not a valid address",
    "erased": "the person asked to be forgotten",
    "complained": "a spam complaint was recorded",
    "bounced": "a hard bounce was recorded",
    "opted_out": "opted out of this purpose or of all marketing",
    "restricted": "processing is restricted, or the person objected",
    "eea": "an EEA address: policy excludes the EEA from campaigns",
    "opt_in_required": "the jurisdiction needs a recorded opt-in, and there is none",
    "unknown_jurisdiction": "no jurisdiction is known, and policy treats that as not sendable",
}
SOURCE_TEXT = {
    "declared": "declared by the person or by staff",
    "hint": "a country hint sent with a consent change",
    "inferred": "inferred from the domain of the address",
    None: "none declared or hinted, and the domain suggests none",
}


def _accessor() -> Accessor:
    return Accessor(actor(), AccessChannel.PAGE, request.remote_addr)


def _purposes() -> tuple[str, ...]:
    return current.settings().purposes


def purpose_label(purpose: str) -> str:
    return "all marketing" if purpose == ALL_PURPOSES else purpose.replace("_", " ")


@bp.app_template_filter("staff_purpose")
def _purpose_filter(purpose: str | None) -> str:
    return purpose_label(purpose) if purpose else ""


@bp.app_template_filter("channel")
def _channel_filter(source: str) -> str:
    """A source as its channel's name; a source the caller named shows as written."""
    return channel_label(source) if channel_of(source) != OTHER_CHANNEL else source


@bp.app_template_filter("staff_time")
def _time_filter(value: datetime | None) -> str:
    return f"{value:%Y-%m-%d %H:%M:%S} UTC" if value else ""


@bp.get("/")
def search() -> Any:
    return render_template("staff/search.html", form={}, errors={})


@bp.post("/search")
def search_post() -> Any:
    result = forms.read_search(request.form)
    if not result.ok:
        return render_template("staff/search.html", form=request.form, errors=result.errors), 422
    canonical = result.values["email"]
    db = current.db_session()
    subject = find_subject(db, current.vault(), canonical)
    record_access(
        db,
        _accessor(),
        AccessAction.LOOKUP,
        subject.id if subject else None,
        current.now(),
        result.values.get("reason"),
    )
    db.commit()
    if subject is None:
        return render_template(
            "staff/search.html",
            form={},
            errors={},
            not_found=canonical,
            waiting=_waiting(db, current.vault().index(canonical)),
            opt_out_form={},
            opt_out_errors={},
            channels=forms.CHANNELS,
            purposes=_purposes(),
        ), 404
    session[SHOWN_KEY] = subject.id
    return redirect(url_for("staff.subject", subject_id=subject.id), 303)


def _subject_or_404(db: Session, subject_id: int) -> Subject:
    # Ids are 64-bit: a longer number in the URL is no subject, not a driver error.
    subject = db.get(Subject, subject_id) if subject_id < 2**63 else None
    if subject is None:
        abort(404, description="No subject has this id.")
    if folded := folding.fold_for_index(db, subject.email_index):
        db.commit()
        folding.count(folded)
        db.expire(subject)  # the fold moved its state on: read it again
    return subject


def _address(subject: Subject) -> str | None:
    return current.vault().open(subject.email_sealed) if subject.email_sealed else None


def _view(db: Session, subject: Subject) -> SubjectView:
    return view_subject(
        db, _address(subject) or "", subject, current.settings().policy, current.now()
    )


def _waiting(db: Session, index: bytes) -> list[OptInRequest]:
    """Opt-ins the person asked for that wait for their mailbox to confirm."""
    return [request for request in requests_for(db, index) if request.confirmed_at is None]


def render_subject(
    db: Session,
    subject: Subject,
    errors: dict[str, dict[str, str]] | None = None,
    form: dict[str, Any] | None = None,
    status: int = 200,
) -> Any:
    view = _view(db, subject)
    policy = current.settings().policy
    country = view.jurisdiction.country
    events = subject_events(db, subject.id)
    vault = current.vault()
    return render_template(
        "staff/subject.html",
        subject=subject,
        address=_address(subject),
        view=view,
        events=events,
        evidence_of={e.id: open_evidence(vault, e.evidence_sealed) for e in events},
        waiting=_waiting(db, bytes(subject.email_index)),
        regime=policy.regimes.regime_for(country).value,
        eea=is_eea(country),
        eea_policy=policy.eea_policy.value,
        reason_text=REASON_TEXT,
        source_text=SOURCE_TEXT,
        purposes=_purposes(),
        channels=forms.CHANNELS,
        rights_blocks=forms.RIGHTS_BLOCKS,
        errors=errors or {},
        form=form or {},
        now=current.now(),
    ), status


@bp.get("/subjects/<int:subject_id>")
def subject(subject_id: int) -> Any:
    db = current.db_session()
    found = _subject_or_404(db, subject_id)
    if session.pop(SHOWN_KEY, None) != found.id:
        record_access(db, _accessor(), AccessAction.VIEW, found.id, current.now())
        db.commit()
    return render_subject(db, found)


def _context(source: str, evidence: dict[str, str], **extra: Any) -> EventContext:
    now = current.now()
    return EventContext(
        actor=actor(),
        source=source,
        occurred_at=extra.pop("occurred_at", None) or now,
        recorded_at=now,
        evidence=evidence,
        **extra,
    )


def _after_change(db: Session, subject: Subject, message: str) -> Any:
    view = _view(db, subject)
    decisions = ", ".join(
        f"{purpose_label(p)}: {'sendable' if d.sendable else d.reason_code}"
        for p, d in view.decisions.items()
    )
    db.commit()
    flash(f"{message} Decisions now: {decisions}.", "ok")
    session[SHOWN_KEY] = subject.id
    return redirect(url_for("staff.subject", subject_id=subject.id), 303)


def _changeable(db: Session, subject_id: int) -> tuple[Subject, str]:
    subject = _subject_or_404(db, subject_id)
    address = _address(subject)
    if address is None:
        abort(409, description="This subject is erased: only its keyed index is kept.")
    return subject, address


def _refused(db: Session, subject: Subject, form_name: str, error: SuppressionError) -> Any:
    db.rollback()
    message = error.message
    if error.errors:
        message += ": " + "; ".join(
            f"{name}: {' '.join(map(str, texts)) if isinstance(texts, list) else texts}"
            for name, texts in error.errors.items()
        )
    return render_subject(
        db, subject, {form_name: {"_": message}}, {form_name: request.form}, status=409
    )


@bp.post("/subjects/<int:subject_id>/opt-out")
def opt_out(subject_id: int) -> Any:
    db = current.db_session()
    subject, address = _changeable(db, subject_id)
    result = forms.read_opt_out(request.form, _purposes())
    if not result.ok:
        return render_subject(
            db, subject, {"opt_out": result.errors}, {"opt_out": request.form}, status=422
        )
    values = result.values
    ctx = _context(values["channel"], {"reason": values["reason"]})
    try:
        record_consent(
            db, current.vault(), address, values["purpose"], ConsentStatus.OPTED_OUT, ctx
        )
    except SuppressionError as error:
        return _refused(db, subject, "opt_out", error)
    return _after_change(db, subject, f"Opted out of {purpose_label(values['purpose'])}.")


@bp.post("/subjects/<int:subject_id>/opt-in")
def opt_in(subject_id: int) -> Any:
    db = current.db_session()
    subject, address = _changeable(db, subject_id)
    result = forms.read_opt_in(request.form, _purposes(), current.now())
    if not result.ok:
        return render_subject(
            db, subject, {"opt_in": result.errors}, {"opt_in": request.form}, status=422
        )
    values = result.values
    occurred = values.get("occurred_at")
    ctx = _context(
        values["channel"],
        {"evidence": values["evidence"]},
        occurred_at=datetime.fromisoformat(occurred) if occurred else None,
        notice_version=values["notice_version"] or None,
    )
    try:
        # The same guard as the API: staff with evidence may opt back in, and doing
        # so lifts a recorded complaint (services/consents/resubscribe.py).
        conflict = opt_in_conflict(
            db, subject, address, values["purpose"], ctx.occurred_at, OptInAuthority.STAFF, True
        )
        if conflict is not None:
            raise Conflict(conflict)
        clear_for_staff_opt_in(db, current.vault(), subject, address, ctx)
        record_consent(db, current.vault(), address, values["purpose"], ConsentStatus.OPTED_IN, ctx)
    except SuppressionError as error:
        return _refused(db, subject, "opt_in", error)
    return _after_change(
        db, subject, f"Opt-in to {purpose_label(values['purpose'])} recorded with its evidence."
    )


@bp.post("/subjects/<int:subject_id>/jurisdiction")
def jurisdiction(subject_id: int) -> Any:
    db = current.db_session()
    subject, address = _changeable(db, subject_id)
    result = forms.read_jurisdiction(request.form)
    if not result.ok:
        return render_subject(
            db,
            subject,
            {"jurisdiction": result.errors},
            {"jurisdiction": request.form},
            status=422,
        )
    values = result.values
    ctx = _context("staff", {"reason": values["reason"]})
    try:
        set_country(db, current.vault(), address, values["country"], CountrySource.DECLARED, ctx)
    except SuppressionError as error:
        return _refused(db, subject, "jurisdiction", error)
    return _after_change(db, subject, f"Jurisdiction set to {values['country']} (declared).")


@bp.post("/subjects/<int:subject_id>/rights-block")
def rights_block(subject_id: int) -> Any:
    """A restriction (Art. 18), an objection (Art. 21), or lifting a restriction: staff
    and admins may; a sender key may not lift (api/blocks.py)."""
    db = current.db_session()
    subject, address = _changeable(db, subject_id)
    result = forms.read_rights_block(request.form)
    if not result.ok:
        return render_subject(
            db, subject, {"rights_block": result.errors}, {"rights_block": request.form}, 422
        )
    kind = result.values["kind"]
    ctx = _context("staff", {"reason": result.values["reason"]})
    try:
        record_block(db, current.vault(), address, kind, ctx)
    except SuppressionError as error:
        return _refused(db, subject, "rights_block", error)
    done = {
        "restriction": "Processing restricted.",
        "objection": "Objection recorded.",
        "lift_restriction": "Restriction lifted.",
    }
    return _after_change(db, subject, done[kind])


@bp.post("/subjects/opt-out")
def opt_out_unknown() -> Any:
    """An opt-out for an address never seen (someone emailed to ask): the subject
    is created with the opt-out as its first event."""
    search = forms.FormResult()
    forms.read_email(request.form, search)
    result = forms.read_opt_out(request.form, _purposes())
    if not search.ok or not result.ok:
        return render_template(
            "staff/search.html",
            form={},
            errors={},
            not_found=search.values.get("email") or request.form.get("email", ""),
            opt_out_form=request.form,
            opt_out_errors={**search.errors, **result.errors},
            channels=forms.CHANNELS,
            purposes=_purposes(),
        ), 422
    values = result.values
    db = current.db_session()
    ctx = _context(values["channel"], {"reason": values["reason"]})
    subject = record_consent(
        db,
        current.vault(),
        search.values["email"],
        values["purpose"],
        ConsentStatus.OPTED_OUT,
        ctx,
    )
    return _after_change(
        db,
        subject,
        f"{mask(search.values['email'])} is now on record, opted out of "
        f"{purpose_label(values['purpose'])}.",
    )
