"""`/preferences/<token>`: one switch per purpose, and `/confirm/<token>`: the
double opt-in's second step. Switching a purpose back on only asks the address
for a confirmation; its link records the opt-in, with the evidence of both steps."""

from __future__ import annotations

import logging
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from suppression.app import current, folding
from suppression.app.links import read_confirmation
from suppression.domain.addresses import mask
from suppression.domain.policy import ALL_PURPOSES, EventAction
from suppression.domain.purposes import PURPOSE_HINTS
from suppression.domain.tokens import (
    ConfirmationClaims,
    LinkClaims,
    LinkKind,
    TokenError,
    TokenProblem,
)
from suppression.observability import metrics
from suppression.services.consents.intake import has_pending
from suppression.services.consents.recording import EventContext
from suppression.services.links.opt_in_requests import (
    RESEND_AFTER,
    UnknownRequest,
    confirm_opt_in,
    find_request,
    request_opt_in,
)
from suppression.services.links.unsubscribes import (
    ACTOR,
    SOURCE_PREFERENCE_PAGE,
    Preferences,
    read_preferences,
    save_preferences,
)
from suppression.web.public import results
from suppression.web.public.blueprint import (
    alarm_rule,
    blp,
    event_context,
    iso_time,
    link_page,
    minted_by,
    read_link,
    record_unsubscribe,
    user_agent,
)

logger = logging.getLogger(__name__)


def _fold_pending(claims: LinkClaims) -> None:
    """The person's own one-clicks folded first, so the page shows them. Looked
    for without the write lock (SQLite): a page view takes it only to fold."""
    index = current.vault().index(claims.address)
    reader = current.read_session()
    pending = has_pending(reader, index)
    reader.rollback()
    if pending:
        session = current.db_session()
        if folded := folding.fold_for_index(session, index):
            session.commit()
            folding.count(folded)
        current.close_sessions()


def _preferences(claims: LinkClaims) -> Preferences:
    """The switches as stored now, read without taking a write lock (a pending
    one-click of this person's is folded first, in its own short transaction)."""
    _fold_pending(claims)
    session = current.read_session()
    try:
        return read_preferences(
            session, current.vault(), current.settings().policy, claims.address, current.now()
        )
    finally:
        session.rollback()


def _preferences_page(claims: LinkClaims, token: str, **extra: Any) -> dict[str, Any]:
    extra.setdefault("preferences", _preferences(claims))
    return link_page(
        claims,
        token,
        hints=PURPOSE_HINTS,
        notice_version=current.settings().links.notice_version,
        contact=current.settings().contact_mailbox,
        **extra,
    )


def _saved(args: MultiDict[str, str]) -> dict[str, Any]:
    """The answer of a save, as its redirect carried it (results.py)."""
    settings = current.settings()
    known = settings.purposes
    changes = {
        "opted_out": results.purposes(args, "off", known),
        "refused": results.purposes(args, "refused", known),
    }
    asked = results.purposes(args, "asked", known)
    status = results.mail_status(args)
    if not asked or status is None:
        return {"changes": changes, "confirmation": None}
    confirmation = {
        "purposes": asked,
        "status": status,
        "hours": settings.mail.confirm_link_hours,
        "resend_minutes": int(RESEND_AFTER.total_seconds() // 60),
    }
    return {"changes": changes, "confirmation": confirmation}


def _preference_link(token: str) -> LinkClaims:
    """The preference page opens with a preference token only: the unsubscribe
    token (readable by anyone who handles the mail) may only opt out."""
    return read_link(token, (LinkKind.PREFERENCES,))


@blp.get("/preferences/<token>")
def preferences_page(token: str) -> str:
    """One switch per purpose, as stored now, and the answer of the form when its
    POST redirected here (`?done=saved|all_out`). Writes nothing."""
    claims = _preference_link(token)
    done = results.answer(request.args, (results.SAVED, results.ALL_OUT))
    extra: dict[str, Any] = {}
    if done == results.SAVED:
        extra = _saved(request.args)
    elif done == results.ALL_OUT:
        extra = {"all_out": True}
    return render_template("public/preferences.html", **_preferences_page(claims, token, **extra))


@blp.post("/preferences/<token>")
def preferences_post(token: str) -> ResponseReturnValue:
    claims = _preference_link(token)
    action = request.form.get("action")
    if action == "opt_out_all":
        record_unsubscribe(claims, ALL_PURPOSES, SOURCE_PREFERENCE_PAGE)
        return results.see("public.preferences_page", token, results.ALL_OUT)
    if action != "save":
        page = _preferences_page(claims, token, unclear=True)
        return render_template("public/preferences.html", **page), 400
    settings = current.settings()
    shown = set(request.form.getlist("shown")) & set(settings.purposes)
    wanted = set(request.form.getlist("receive")) & shown
    session = current.db_session()
    if folded := folding.fold_for_address(session, claims.address):
        session.commit()
        folding.count(folded)
    ctx = event_context(claims, SOURCE_PREFERENCE_PAGE, **minted_by(claims))
    changes = save_preferences(
        session,
        current.vault(),
        settings.policy,
        claims.address,
        shown,
        wanted,
        ctx,
        alarm_rule(),
    )
    confirmation = _ask_confirmation(session, claims, changes.to_confirm, ctx)
    session.commit()
    if confirmation is not None and confirmation.get("request_id") is not None:
        confirmation["status"] = _send_now(confirmation.pop("request_id"))
    metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, SOURCE_PREFERENCE_PAGE).inc(
        len(changes.opted_out)
    )
    if changes.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    return results.see(
        "public.preferences_page",
        token,
        results.SAVED,
        off=changes.opted_out,
        refused=changes.refused,
        asked=confirmation["purposes"] if confirmation else None,
        mail=confirmation["status"] if confirmation else None,
    )


def _ask_confirmation(
    session: Any, claims: LinkClaims, purposes: tuple[str, ...], ctx: EventContext
) -> dict[str, Any] | None:
    """Opt-ins wait for the mailbox: a request row (and its mail) in this transaction.
    What the page then says: sent, sent a moment ago already, or not possible."""
    if not purposes:
        return None
    settings = current.settings()
    answer: dict[str, Any] = {
        "purposes": purposes,
        "hours": settings.mail.confirm_link_hours,
        "resend_minutes": int(RESEND_AFTER.total_seconds() // 60),
    }
    if not settings.mail.enabled:
        return {**answer, "status": "unavailable"}
    evidence = {
        "requested_at": iso_time(ctx.recorded_at),
        "request_ip": ctx.ip,
        "request_user_agent": ctx.user_agent,
        "request_notice_version": settings.links.notice_version,
        "campaign": ctx.campaign,
        **(ctx.evidence or {}),
    }
    outcome = request_opt_in(
        session, current.vault(), claims.address, purposes, evidence, ctx.recorded_at
    )
    if not outcome.new:
        return {**answer, "status": "recent", "requested_at": outcome.request.requested_at}
    return {**answer, "status": "queued", "request_id": outcome.request.id}


def _send_now(request_id: int) -> str:
    """After the commit: hand the mail to the relay now; if that fails the worker
    retries it (the row is the outbox), and the page says the mail may be late."""
    mailer = current.runtime().mailer
    if mailer is None:  # mail is off: the request waits for the worker
        return "queued"
    try:
        return "sent" if mailer.deliver(request_id) else "queued"
    except Exception:  # the request is recorded; the worker sends what this did not
        logger.exception("sending confirmation mail for opt-in request %d failed", request_id)
        return "queued"


@blp.get("/confirm/<token>")
def confirm_page(token: str) -> str:
    """What the confirmation link would switch on, and a button; or the answer its
    POST redirected to (`?done=confirmed|blocked|erased`). Writes nothing (mail
    scanners open every link)."""
    claims = read_confirmation(token)
    reader = current.read_session()
    try:
        request_row = find_request(reader, current.vault(), claims)
        confirmed_at = request_row.confirmed_at
    except UnknownRequest:
        raise TokenError(TokenProblem.EXPIRED) from None
    finally:
        reader.rollback()
    done = results.answer(request.args, (results.CONFIRMED, results.BLOCKED, results.ERASED))
    if done is None:
        return _confirm_page(claims, token, already_at=confirmed_at)
    outcome = {
        "opted_in": results.purposes(request.args, "on", claims.purposes),
        "refused": results.purposes(request.args, "refused", claims.purposes),
        "erased": done == results.ERASED,
    }
    if done == results.CONFIRMED and (not outcome["opted_in"] or confirmed_at is None):
        # Nothing to thank for, or a query made up before confirming: the page as stored.
        return _confirm_page(claims, token, already_at=confirmed_at)
    return _confirm_page(claims, token, outcome=outcome)


def _confirm_page(claims: ConfirmationClaims, token: str, **extra: Any) -> str:
    return render_template(
        "public/confirm.html",
        token=token,
        masked=mask(claims.address),
        purposes=claims.purposes,
        notice_version=current.settings().links.notice_version,
        **extra,
    )


@blp.post("/confirm/<token>")
def confirm_post(token: str) -> ResponseReturnValue:
    claims = read_confirmation(token)
    settings = current.settings()
    session = current.db_session()
    if folded := folding.fold_for_address(session, claims.address):
        session.commit()
        folding.count(folded)
    now = current.now()
    ctx = EventContext(
        actor=ACTOR,
        source=SOURCE_PREFERENCE_PAGE,
        occurred_at=now,
        recorded_at=now,
        ip=request.remote_addr,
        user_agent=user_agent(),
        notice_version=settings.links.notice_version,
    )
    try:
        outcome = confirm_opt_in(session, current.vault(), settings.policy, claims, ctx)
    except UnknownRequest:
        raise TokenError(TokenProblem.EXPIRED) from None
    session.commit()
    metrics.CONSENT_CHANGES.labels(EventAction.OPTED_IN, SOURCE_PREFERENCE_PAGE).inc(
        len(outcome.opted_in)
    )
    if outcome.already_at is not None:
        return results.see("public.confirm_page", token, results.CONFIRMED)
    if outcome.opted_in:
        done = results.CONFIRMED
    else:
        done = results.ERASED if outcome.erased else results.BLOCKED
    return results.see(
        "public.confirm_page", token, done, on=outcome.opted_in, refused=outcome.refused
    )
