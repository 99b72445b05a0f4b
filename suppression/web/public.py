"""The public pages behind unsubscribe links: `/u/<token>` and `/preferences/<token>`.

GET and HEAD only ever show a page: mail scanners and link previewers fetch every
link, so they write nothing (the unsubscribe page does not even read the store;
the preference page reads the current switches). POST acts: the RFC
8058 one-click body (`List-Unsubscribe=One-Click`, form-encoded or multipart)
answers 200 with a short text body, the page's own form answers with a
confirmation page; neither redirects, sets a cookie or needs a login or a CSRF
token, because the token in the URL is the credential. A bad, changed or expired
token answers 400 with a page that says how else to opt out, and records nothing.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, current_app, render_template, request
from flask_limiter import RateLimitExceeded
from sqlalchemy import Engine, create_engine
from sqlalchemy.exc import DBAPIError

from suppression import intake_folder, metrics, runtime
from suppression.domain.addresses import mask
from suppression.domain.policy import ALL_PURPOSES
from suppression.domain.text import storable
from suppression.domain.tokens import LinkClaims, TokenError, TokenProblem
from suppression.links import read_token
from suppression.services.alarms import AlarmRule
from suppression.services.consents import EventContext
from suppression.services.intake import accept_one_click, has_pending
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

logger = logging.getLogger(__name__)

blp = Blueprint("public", __name__)

# How purposes read on the pages; a purpose configured without a label here is
# shown by its name.
PURPOSE_LABELS = {
    ALL_PURPOSES: "all marketing from us",
    "email_marketing": "marketing email",
    "ad_audiences": "personalised ads on other sites",
}
PURPOSE_HINTS = {
    "email_marketing": "News, offers and newsletters by email.",
    "ad_audiences": "Ads on platforms such as Google, Facebook, LinkedIn and Microsoft, "
    "shown because we shared a scrambled form of your address with them.",
}
ONE_CLICK_BODY = "You are unsubscribed.\n"
INTAKE_ENGINE = "suppression.intake_engine"


def purpose_label(purpose: str) -> str:
    return PURPOSE_LABELS.get(purpose, purpose.replace("_", " "))


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
            isolation_level="AUTOCOMMIT",
            hide_parameters=True,  # as database.make_engine: no evidence in an error
            pool_pre_ping=False,
            pool_size=2,
            max_overflow=8,
        )
    app.jinja_env.globals.setdefault("purpose_label", purpose_label)
    ratelimit.install(app, blp, app.extensions[runtime.EXTENSION].settings)


@blp.errorhandler(TokenError)
def bad_link(error: TokenError) -> tuple[str, int]:
    # The reason goes to the log for operators; never the token or an address.
    logger.info("unsubscribe link rejected: %s", error.problem.value)
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


def _context(claims: LinkClaims, source: str) -> EventContext:
    now = runtime.now()
    agent = request.user_agent.string
    return EventContext(
        actor=ACTOR,
        source=source,
        occurred_at=now,
        recorded_at=now,
        ip=request.remote_addr,
        # Storable (no NUL, no lone surrogate): a hostile header must not cost the
        # person's opt-out; nor a campaign minted into a link before minting refused one.
        user_agent=storable(agent[:500]) if agent else None,
        campaign=storable(claims.campaign) if claims.campaign else claims.campaign,
        evidence={
            "link_issued_at": claims.issued_at.isoformat().replace("+00:00", "Z"),
            "link_purpose": claims.purpose,
        },
    )


def _alarm_rule() -> AlarmRule:
    return intake_folder.alarm_rule(runtime.settings().links)


def _page(claims: LinkClaims, token: str, **extra: Any) -> dict[str, Any]:
    settings = runtime.settings()
    return {
        "token": token,
        "masked": mask(claims.address),
        "purpose": link_purpose(claims.purpose, settings.policy),
        "mailbox": settings.unsubscribe_mailbox,
        **extra,
    }


@blp.get("/u/<token>")
def unsubscribe_page(token: str) -> str:
    """The confirmation page. Changes nothing and reads nothing from the store."""
    claims = read_token(token)
    return render_template("public/unsubscribe.html", **_page(claims, token))


@blp.post("/u/<token>")
def unsubscribe_post(token: str) -> Response | tuple[str, int] | str:
    claims = read_token(token)
    one_click = ratelimit.is_one_click()
    if not one_click and request.form.get("action") != "unsubscribe":
        # Neither the RFC 8058 body nor our form: say so, change nothing.
        page = _page(claims, token, unclear=True)
        return render_template("public/unsubscribe.html", **page), 400
    if one_click:
        ratelimit.count_one_click()
        _accept_one_click(claims)
        return Response(ONE_CLICK_BODY, status=200, mimetype="text/plain")
    outcome = _unsubscribe(claims, claims.purpose, SOURCE_UNSUBSCRIBE_PAGE)
    page = _page(claims, token, recorded=outcome.recorded)
    return render_template("public/unsubscribed.html", **page)


def _accept_one_click(claims: LinkClaims) -> None:
    """The RFC 8058 answer waits for one durable INSERT only: the intake row counts
    as an opt-out at once and is folded into the event chain in batches."""
    engine = current_app.extensions.get(INTAKE_ENGINE)
    ctx = _context(claims, SOURCE_ONE_CLICK)
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
        _context(claims, source),
        _alarm_rule(),
    )
    session.commit()
    if outcome.recorded:
        metrics.CONSENT_CHANGES.labels("opted_out", source).inc()
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


@blp.get("/preferences/<token>")
def preferences_page(token: str) -> str:
    """One switch per purpose, as stored now. Writes nothing."""
    claims = read_token(token)
    return render_template("public/preferences.html", **_preferences_page(claims, token))


@blp.post("/preferences/<token>")
def preferences_post(token: str) -> tuple[str, int] | str:
    claims = read_token(token)
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
    changes = save_preferences(
        session,
        runtime.vault(),
        settings.policy,
        claims.address,
        shown,
        wanted,
        _context(claims, SOURCE_PREFERENCE_PAGE),
        settings.links.notice_version,
        _alarm_rule(),
    )
    preferences = read_preferences(
        session, runtime.vault(), settings.policy, claims.address, runtime.now()
    )
    session.commit()
    metrics.CONSENT_CHANGES.labels("opted_in", SOURCE_PREFERENCE_PAGE).inc(len(changes.opted_in))
    metrics.CONSENT_CHANGES.labels("opted_out", SOURCE_PREFERENCE_PAGE).inc(len(changes.opted_out))
    if changes.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    page = _preferences_page(claims, token, preferences=preferences, changes=changes)
    return render_template("public/preferences.html", **page)
