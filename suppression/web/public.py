"""The public pages behind links: `/u/<token>`, `/preferences/<token>` and
`/confirm/<token>`.

GET and HEAD only ever show a page: mail scanners and link previewers fetch every
link, so they write nothing (the unsubscribe page does not even read the store;
the preference and confirmation pages read it). POST acts: the RFC
8058 one-click body (`List-Unsubscribe=One-Click`, form-encoded or multipart)
answers 200 with a short text body, the page's own form answers with a
confirmation page; neither redirects, sets a cookie or needs a login or a CSRF
token, because the token in the URL is the credential. A bad, changed or expired
token answers 400 with a page that says how else to opt out, and records nothing.

Each token opens what its kind allows (domain/tokens.py): the unsubscribe token of
the `List-Unsubscribe` header only opts out; the preference token of the mail's
body opens the preference page, where switching a purpose back on only sends a
confirmation mail to the address; the confirmation link in that mail records the
opt-in, with the evidence of both steps.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Response,
    current_app,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError

from suppression import database, intake_folder, metrics, runtime
from suppression.domain.addresses import mask
from suppression.domain.policy import ALL_PURPOSES, EventAction
from suppression.domain.purposes import PURPOSE_HINTS, purpose_label
from suppression.domain.text import storable
from suppression.domain.tokens import (
    ConfirmationClaims,
    LinkClaims,
    LinkKind,
    TokenError,
    TokenProblem,
)
from suppression.links import read_confirmation, read_token
from suppression.services.alarms import AlarmRule
from suppression.services.api_keys import key_actor
from suppression.services.consents import EventContext
from suppression.services.intake import MINTER_KEY, accept_one_click, has_pending
from suppression.services.opt_in_requests import (
    RESEND_AFTER,
    UnknownRequest,
    confirm_opt_in,
    find_request,
    request_opt_in,
)
from suppression.services.unsubscribes import (
    ACTOR,
    SOURCE_ONE_CLICK,
    SOURCE_PREFERENCE_PAGE,
    SOURCE_UNSUBSCRIBE_PAGE,
    Preferences,
    UnsubscribeOutcome,
    link_purpose,
    read_preferences,
    save_preferences,
    unsubscribe,
)
from suppression.web import ratelimit
from suppression.worker.confirmation_mail import ConfirmationMailer

logger = logging.getLogger(__name__)

blp = Blueprint("public", __name__)

ONE_CLICK_BODY = "You are unsubscribed.\n"
INTAKE_ENGINE = "suppression.intake_engine"
MAILER = "suppression.confirmation_mailer"
# Tokens that open /u/: the header's, and the preference token (which may do more).
UNSUBSCRIBING_KINDS = (LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES)


def install(app: Flask) -> None:
    """Register the pages and their rate limits (a Limiter of this app's own)."""
    app.register_blueprint(blp)
    state = app.extensions[runtime.EXTENSION]
    app.extensions[intake_folder.EXTENSION] = intake_folder.BackgroundFolder(state)
    # On PostgreSQL the intake INSERT runs on a small pool of its own, in
    # autocommit: it is its own durable transaction, without the BEGIN and COMMIT
    # round trips; and without the pre-ping round trip on every checkout (a
    # connection found dead is replaced and the INSERT sent again: see
    # _accept_one_click). SQLite keeps its BEGIN IMMEDIATE: the write lock is
    # what orders its writers.
    if state.engine.dialect.name == "postgresql":
        app.extensions[INTAKE_ENGINE] = create_engine(
            state.engine.url,
            connect_args=database.postgresql_connect_args(state.engine.url),
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,  # as database.make_engine: no evidence in an error
            pool_pre_ping=False,
            pool_size=2,
            max_overflow=8,
        )
    if state.settings.mail.enabled:
        app.extensions[MAILER] = ConfirmationMailer(
            state.sessions, state.vault, state.settings, clock=state.clock
        )
    app.jinja_env.globals.setdefault("purpose_label", purpose_label)
    ratelimit.install(
        app, blp, state.settings, one_click_endpoint=f"{blp.name}.{unsubscribe_post.__name__}"
    )


def bad_link(error: TokenError) -> tuple[str, int]:
    # The reason goes to the log for operators; never the token or an address.
    logger.info("link rejected: %s", error.problem.value)
    return render_template(
        "public/bad_link.html",
        expired=error.problem == TokenProblem.EXPIRED,
        mailbox=runtime.settings().unsubscribe_mailbox,
    ), 400


@blp.errorhandler(RateLimitExceeded)
def too_many(error: RateLimitExceeded) -> Response:
    return _too_many(error.limit.limit.get_expiry())


@blp.errorhandler(ratelimit.OneClickLimited)
def too_many_one_clicks(error: ratelimit.OneClickLimited) -> Response:
    return _too_many(error.retry_after)


def _too_many(retry_after: int) -> Response:
    page = render_template("public/too_many.html", mailbox=runtime.settings().unsubscribe_mailbox)
    response = Response(page, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(retry_after)
    return response


def _time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _link_evidence(claims: LinkClaims) -> dict[str, Any]:
    return {
        "link_kind": claims.kind.name.lower(),
        "link_issued_at": _time(claims.issued_at),
        "link_purpose": claims.purpose,
    }


def _minted_by(claims: LinkClaims) -> dict[str, str]:
    """Who minted the link, by the API key's name (one read; a one-click keeps the id
    and the fold names it)."""
    if claims.minter is None:
        return {}
    reader = runtime.read_session()
    name = key_actor(reader, claims.minter)
    reader.rollback()
    return {"link_minted_by": name} if name else {}


def _agent() -> str | None:
    agent = request.user_agent.string
    return storable(agent[:500]) if agent else None


def _context(claims: LinkClaims, source: str, **evidence: Any) -> EventContext:
    now = runtime.now()
    return EventContext(
        actor=ACTOR,
        source=source,
        occurred_at=now,
        recorded_at=now,
        ip=request.remote_addr,
        # Storable (no NUL, no lone surrogate): a hostile header must not cost the
        # person's opt-out; nor a campaign minted into a link before minting refused one.
        user_agent=_agent(),
        campaign=storable(claims.campaign) if claims.campaign else claims.campaign,
        evidence={**_link_evidence(claims), **evidence},
    )


def _read_link(token: str, kinds: tuple[LinkKind, ...]) -> LinkClaims:
    claims = read_token(token)
    if claims.kind not in kinds:
        raise TokenError(TokenProblem.WRONG_KIND, claims.kind)
    return claims


def _alarm_rule() -> AlarmRule:
    return intake_folder.alarm_rule(runtime.settings().links)


def _page(claims: LinkClaims, token: str, **extra: Any) -> dict[str, Any]:
    settings = runtime.settings()
    return {
        "token": token,
        "masked": mask(claims.address),
        "purpose": link_purpose(claims.purpose, settings.policy),
        "mailbox": settings.unsubscribe_mailbox,
        "can_manage": claims.kind == LinkKind.PREFERENCES,
        **extra,
    }


@blp.get("/u/<token>")
def unsubscribe_page(token: str) -> str:
    """The confirmation page. Changes nothing and reads nothing from the store."""
    claims = _read_link(token, UNSUBSCRIBING_KINDS)
    return render_template("public/unsubscribe.html", **_page(claims, token))


@blp.post("/u/<token>")
def unsubscribe_post(token: str) -> Response | tuple[str, int] | str:
    one_click = ratelimit.is_one_click()
    if one_click:
        # Counted before the token is read: made-up tokens spend the budget too
        # (the page limit does not count one-clicks to this route).
        ratelimit.count_one_click()
    claims = _read_link(token, UNSUBSCRIBING_KINDS)
    if not one_click and request.form.get("action") != "unsubscribe":
        # Neither the RFC 8058 body nor our form: say so, change nothing.
        page = _page(claims, token, unclear=True)
        return render_template("public/unsubscribe.html", **page), 400
    if one_click:
        _accept_one_click(claims)
        return Response(ONE_CLICK_BODY, status=200, mimetype="text/plain")
    outcome = _unsubscribe(claims, claims.purpose, SOURCE_UNSUBSCRIBE_PAGE)
    page = _page(claims, token, recorded=outcome.recorded)
    return render_template("public/unsubscribed.html", **page)


def _accept_one_click(claims: LinkClaims) -> None:
    """The RFC 8058 answer waits for one durable INSERT only: the intake row counts
    as an opt-out at once and is folded into the event chain in batches."""
    engine = current_app.extensions.get(INTAKE_ENGINE)
    ctx = _context(claims, SOURCE_ONE_CLICK, **{MINTER_KEY: claims.minter} if claims.minter else {})
    try:
        _insert_intake(engine, claims, ctx)
    except DBAPIError as error:
        # A pooled connection the server dropped (a restart, a failover): the pool
        # has been emptied; once more on a fresh one. The row was not written, or
        # (the answer to its commit lost) is written twice and folds into one event.
        if engine is None or not error.connection_invalidated:
            raise
        logger.warning("intake connection lost; sending the unsubscribe again")
        _insert_intake(engine, claims, ctx)
    runtime.close_sessions()  # the connection goes back to the pool before the fold
    current_app.extensions[intake_folder.EXTENSION].accepted()


def _insert_intake(engine: Engine | None, claims: LinkClaims, ctx: EventContext) -> None:
    with runtime.runtime().sessions(bind=engine) if engine else runtime.db_session() as session:
        accept_one_click(
            session, runtime.vault(), runtime.settings().policy, claims.address, claims.purpose, ctx
        )
        session.commit()


def _fold_pending(claims: LinkClaims) -> None:
    """The person's own one-clicks folded first, so the page shows them. Looked
    for without the write lock (SQLite): a page view takes it only to fold."""
    index = runtime.vault().index(claims.address)
    reader = runtime.read_session()
    pending = has_pending(reader, index)
    reader.rollback()
    if pending:
        intake_folder.fold_for_index(runtime.db_session(), index)
        runtime.close_sessions()


def _unsubscribe(claims: LinkClaims, purpose: str, source: str) -> UnsubscribeOutcome:
    session = runtime.db_session()
    intake_folder.fold_for_address(session, claims.address)
    outcome = unsubscribe(
        session,
        runtime.vault(),
        runtime.settings().policy,
        claims.address,
        purpose,
        _context(claims, source, **_minted_by(claims)),
        _alarm_rule(),
    )
    session.commit()
    if outcome.recorded:
        metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, source).inc()
    if outcome.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    return outcome


def _preferences(claims: LinkClaims) -> Preferences:
    """The switches as stored now, read without taking a write lock (a pending
    one-click of this person's is folded first, in its own short transaction)."""
    _fold_pending(claims)
    session = runtime.read_session()
    try:
        return read_preferences(
            session, runtime.vault(), runtime.settings().policy, claims.address, runtime.now()
        )
    finally:
        session.rollback()


def _preferences_page(claims: LinkClaims, token: str, **extra: Any) -> dict[str, Any]:
    extra.setdefault("preferences", _preferences(claims))
    return _page(
        claims,
        token,
        hints=PURPOSE_HINTS,
        notice_version=runtime.settings().links.notice_version,
        **extra,
    )


def _preference_link(token: str) -> LinkClaims:
    """The preference page opens with a preference token only: the unsubscribe
    token (readable by anyone who handles the mail) may only opt out."""
    return _read_link(token, (LinkKind.PREFERENCES,))


@blp.errorhandler(TokenError)
def wrong_link(error: TokenError) -> ResponseReturnValue:
    """An unsubscribe token on the preference page is sent to what it can do: a GET
    to its unsubscribe page; a POST is refused (400) on that page, changing nothing.
    Any other rejected token gets the bad-link page."""
    token = (request.view_args or {}).get("token")
    if error.problem != TokenProblem.WRONG_KIND or error.kind != LinkKind.UNSUBSCRIBE or not token:
        return bad_link(error)
    if request.endpoint == "public.preferences_page":
        return redirect(url_for("public.unsubscribe_page", token=token), 303)
    if request.endpoint == "public.preferences_post":
        page = _page(read_token(token), token, unsubscribe_only=True)
        return render_template("public/unsubscribe.html", **page), 400
    return bad_link(error)


@blp.get("/preferences/<token>")
def preferences_page(token: str) -> str:
    """One switch per purpose, as stored now. Writes nothing."""
    claims = _preference_link(token)
    return render_template("public/preferences.html", **_preferences_page(claims, token))


@blp.post("/preferences/<token>")
def preferences_post(token: str) -> tuple[str, int] | str:
    claims = _preference_link(token)
    action = request.form.get("action")
    if action == "opt_out_all":
        outcome = _unsubscribe(claims, ALL_PURPOSES, SOURCE_PREFERENCE_PAGE)
        page = _preferences_page(claims, token, all_out=outcome)
        return render_template("public/preferences.html", **page)
    if action != "save":
        page = _preferences_page(claims, token, unclear=True)
        return render_template("public/preferences.html", **page), 400
    settings = runtime.settings()
    shown = set(request.form.getlist("shown")) & set(settings.purposes)
    wanted = set(request.form.getlist("receive")) & shown
    session = runtime.db_session()
    intake_folder.fold_for_address(session, claims.address)
    ctx = _context(claims, SOURCE_PREFERENCE_PAGE, **_minted_by(claims))
    changes = save_preferences(
        session,
        runtime.vault(),
        settings.policy,
        claims.address,
        shown,
        wanted,
        ctx,
        _alarm_rule(),
    )
    confirmation = _ask_confirmation(session, claims, changes.to_confirm, ctx)
    preferences = read_preferences(
        session, runtime.vault(), settings.policy, claims.address, runtime.now()
    )
    session.commit()
    if confirmation is not None and confirmation.get("request_id") is not None:
        confirmation["status"] = _send_now(confirmation.pop("request_id"))
    metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, SOURCE_PREFERENCE_PAGE).inc(
        len(changes.opted_out)
    )
    if changes.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    page = _preferences_page(
        claims, token, preferences=preferences, changes=changes, confirmation=confirmation
    )
    return render_template("public/preferences.html", **page)


def _ask_confirmation(
    session: Any, claims: LinkClaims, purposes: tuple[str, ...], ctx: EventContext
) -> dict[str, Any] | None:
    """Opt-ins wait for the mailbox: a request row (and its mail) in this transaction.
    What the page then says: sent, sent a moment ago already, or not possible."""
    if not purposes:
        return None
    settings = runtime.settings()
    answer: dict[str, Any] = {
        "purposes": purposes,
        "hours": settings.mail.confirm_link_hours,
        "resend_minutes": int(RESEND_AFTER.total_seconds() // 60),
    }
    if not settings.mail.enabled:
        return {**answer, "status": "unavailable"}
    evidence = {
        "requested_at": _time(ctx.recorded_at),
        "request_ip": ctx.ip,
        "request_user_agent": ctx.user_agent,
        "request_notice_version": settings.links.notice_version,
        "campaign": ctx.campaign,
        **(ctx.evidence or {}),
    }
    outcome = request_opt_in(
        session, runtime.vault(), claims.address, purposes, evidence, ctx.recorded_at
    )
    if not outcome.new:
        return {**answer, "status": "recent", "requested_at": outcome.request.requested_at}
    return {**answer, "status": "queued", "request_id": outcome.request.id}


def _send_now(request_id: int) -> str:
    """After the commit: hand the mail to the relay now; if that fails the worker
    retries it (the row is the outbox), and the page says the mail may be late."""
    mailer: ConfirmationMailer = current_app.extensions[MAILER]
    try:
        return "sent" if mailer.deliver(request_id) else "queued"
    except Exception:  # the request is recorded; the worker sends what this did not
        logger.exception("sending confirmation mail for opt-in request %d failed", request_id)
        return "queued"


@blp.get("/confirm/<token>")
def confirm_page(token: str) -> str:
    """What the confirmation link would switch on, and a button. Writes nothing
    (mail scanners open every link)."""
    claims = read_confirmation(token)
    reader = runtime.read_session()
    try:
        request_row = find_request(reader, runtime.vault(), claims)
        confirmed_at = request_row.confirmed_at
    except UnknownRequest:
        raise TokenError(TokenProblem.EXPIRED) from None
    finally:
        reader.rollback()
    return _confirm_page(claims, token, already_at=confirmed_at)


def _confirm_page(claims: ConfirmationClaims, token: str, **extra: Any) -> str:
    return render_template(
        "public/confirm.html",
        token=token,
        masked=mask(claims.address),
        purposes=claims.purposes,
        notice_version=runtime.settings().links.notice_version,
        **extra,
    )


@blp.post("/confirm/<token>")
def confirm_post(token: str) -> str:
    claims = read_confirmation(token)
    settings = runtime.settings()
    session = runtime.db_session()
    intake_folder.fold_for_address(session, claims.address)
    now = runtime.now()
    ctx = EventContext(
        actor=ACTOR,
        source=SOURCE_PREFERENCE_PAGE,
        occurred_at=now,
        recorded_at=now,
        ip=request.remote_addr,
        user_agent=_agent(),
        notice_version=settings.links.notice_version,
    )
    try:
        outcome = confirm_opt_in(session, runtime.vault(), settings.policy, claims, ctx)
    except UnknownRequest:
        raise TokenError(TokenProblem.EXPIRED) from None
    session.commit()
    metrics.CONSENT_CHANGES.labels(EventAction.OPTED_IN, SOURCE_PREFERENCE_PAGE).inc(
        len(outcome.opted_in)
    )
    return _confirm_page(claims, token, outcome=outcome, already_at=outcome.already_at)
