"""`/u/<token>`: the unsubscribe page, its form, and the RFC 8058 one-click POST
(`List-Unsubscribe=One-Click`), which answers 200 with a short text body once its
intake row is durable."""

from __future__ import annotations

from flask import Response, render_template, request
from flask.typing import ResponseReturnValue

from suppression.app import current
from suppression.domain.tokens import LinkClaims, LinkKind
from suppression.services.consents.intake import MINTER_KEY, one_click_row
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
    """The RFC 8058 answer waits for one durable INSERT only, shared with the clicks
    that arrive meanwhile (worker/one_click_intake.py): the intake row counts as an
    opt-out at once and is folded into the event chain in batches."""
    minter = {MINTER_KEY: claims.minter} if claims.minter else {}
    ctx = event_context(claims, SOURCE_ONE_CLICK, **minter)
    row = one_click_row(
        current.vault(), current.settings().policy, claims.address, claims.purpose, ctx
    )
    current.close_sessions()  # nothing of the request's own is open while it waits
    current.runtime().intake.write(row)
    current.runtime().folder.accepted()
