"""`/u/<token>`: the unsubscribe page, its form, and the RFC 8058 one-click POST
(`List-Unsubscribe=One-Click`), which answers 200 with a short text body once its
intake row is durable."""

from __future__ import annotations

import logging

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from suppression.app import current
from suppression.domain.tokens import LinkClaims, LinkKind
from suppression.services.consents.intake import MINTER_KEY, accept_one_click
from suppression.services.consents.recording import EventContext
from suppression.services.links.unsubscribes import SOURCE_ONE_CLICK, SOURCE_UNSUBSCRIBE_PAGE
from suppression.web import ratelimit
from suppression.web.public import results
from suppression.web.public.blueprint import (
    blp,
    event_context,
    link_page,
    read_link,
    record_unsubscribe,
)

logger = logging.getLogger(__name__)

ONE_CLICK_BODY = "You are unsubscribed.\n"
# Tokens that open /u/: the header's, and the preference token (which may do more).
UNSUBSCRIBING_KINDS = (LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES)


@blp.get("/u/<token>")
def unsubscribe_page(token: str) -> str:
    """The confirmation page, or (`?done=unsubscribed`, where the form redirects) the
    answer. Changes nothing and reads nothing from the store."""
    claims = read_link(token, UNSUBSCRIBING_KINDS)
    if results.answer(request.args, (results.UNSUBSCRIBED,)):
        page = link_page(claims, token, recorded=request.args.get("already") is None)
        return render_template("public/unsubscribed.html", **page)
    return render_template("public/unsubscribe.html", **link_page(claims, token))


@blp.post("/u/<token>")
def unsubscribe_post(token: str) -> ResponseReturnValue:
    one_click = ratelimit.is_one_click()
    if one_click:
        # Counted before the token is read: made-up tokens spend the budget too
        # (the page limit does not count one-clicks to this route).
        ratelimit.count_one_click()
    claims = read_link(token, UNSUBSCRIBING_KINDS)
    if not one_click and request.form.get("action") != "unsubscribe":
        # Neither the RFC 8058 body nor our form: say so, change nothing.
        page = link_page(claims, token, unclear=True)
        return render_template("public/unsubscribe.html", **page), 400
    if one_click:
        _accept_one_click(claims)
        return Response(ONE_CLICK_BODY, status=200, mimetype="text/plain")
    outcome = record_unsubscribe(claims, claims.purpose, SOURCE_UNSUBSCRIBE_PAGE)
    already = None if outcome.recorded else "1"
    return results.see("public.unsubscribe_page", token, results.UNSUBSCRIBED, already=already)


def _accept_one_click(claims: LinkClaims) -> None:
    """The RFC 8058 answer waits for one durable INSERT only: the intake row counts
    as an opt-out at once and is folded into the event chain in batches."""
    engine = current.runtime().intake_engine
    minter = {MINTER_KEY: claims.minter} if claims.minter else {}
    ctx = event_context(claims, SOURCE_ONE_CLICK, **minter)
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
    current.close_sessions()  # the connection goes back to the pool before the fold
    current.runtime().folder.accepted()


def _insert_intake(engine: Engine | None, claims: LinkClaims, ctx: EventContext) -> None:
    with current.runtime().sessions(bind=engine) if engine else current.db_session() as session:
        accept_one_click(
            session, current.vault(), current.settings().policy, claims.address, claims.purpose, ctx
        )
        session.commit()
