"""The `public` blueprint: its error pages (a bad link, too many requests), and what
every page reads from its link (the claims, the event's context and evidence)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_limiter import RateLimitExceeded

from suppression.app import current, folding
from suppression.app.links import read_token
from suppression.domain.addresses import mask
from suppression.domain.policy import EventAction
from suppression.domain.text import storable
from suppression.domain.tokens import LinkClaims, LinkKind, TokenError, TokenProblem
from suppression.observability import metrics
from suppression.services.consents.alarms import AlarmRule
from suppression.services.consents.recording import EventContext
from suppression.services.links.unsubscribes import (
    ACTOR,
    UnsubscribeOutcome,
    link_purpose,
    unsubscribe,
)
from suppression.services.staff.api_keys import key_actor
from suppression.web import ratelimit
from suppression.worker import one_click_folding

logger = logging.getLogger(__name__)

blp = Blueprint("public", __name__)


def bad_link(error: TokenError) -> tuple[str, int]:
    # The reason goes to the log for operators; never the token or an address.
    logger.info("link rejected: %s", error.problem.value)
    return render_template(
        "public/bad_link.html",
        expired=error.problem == TokenProblem.EXPIRED,
        mailbox=current.settings().unsubscribe_mailbox,
    ), 400


@blp.errorhandler(RateLimitExceeded)
def too_many(error: RateLimitExceeded) -> Response:
    return _too_many(error.limit.limit.get_expiry())


@blp.errorhandler(ratelimit.OneClickLimited)
def too_many_one_clicks(error: ratelimit.OneClickLimited) -> Response:
    return _too_many(error.retry_after)


def _too_many(retry_after: int) -> Response:
    page = render_template("public/too_many.html", mailbox=current.settings().unsubscribe_mailbox)
    response = Response(page, status=429, mimetype="text/html")
    response.headers["Retry-After"] = str(retry_after)
    return response


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
        page = link_page(read_token(token), token, unsubscribe_only=True)
        return render_template("public/unsubscribe.html", **page), 400
    return bad_link(error)


def iso_time(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _link_evidence(claims: LinkClaims) -> dict[str, Any]:
    return {
        "link_kind": claims.kind.name.lower(),
        "link_issued_at": iso_time(claims.issued_at),
        "link_purpose": claims.purpose,
    }


def minted_by(claims: LinkClaims) -> dict[str, str]:
    """Who minted the link, by the API key's name (one read; a one-click keeps the id
    and the fold names it)."""
    if claims.minter is None:
        return {}
    reader = current.read_session()
    name = key_actor(reader, claims.minter)
    reader.rollback()
    return {"link_minted_by": name} if name else {}


def user_agent() -> str | None:
    agent = request.user_agent.string
    return storable(agent[:500]) if agent else None


def event_context(claims: LinkClaims, source: str, **evidence: Any) -> EventContext:
    now = current.now()
    return EventContext(
        actor=ACTOR,
        source=source,
        occurred_at=now,
        recorded_at=now,
        ip=request.remote_addr,
        # Storable (no NUL, no lone surrogate): a hostile header must not cost the
        # person's opt-out; nor a campaign minted into a link before minting refused one.
        user_agent=user_agent(),
        campaign=storable(claims.campaign) if claims.campaign else claims.campaign,
        evidence={**_link_evidence(claims), **evidence},
    )


def read_link(token: str, kinds: tuple[LinkKind, ...]) -> LinkClaims:
    claims = read_token(token)
    if claims.kind not in kinds:
        raise TokenError(TokenProblem.WRONG_KIND, claims.kind)
    return claims


def alarm_rule() -> AlarmRule:
    return one_click_folding.alarm_rule(current.settings().links)


def link_page(claims: LinkClaims, token: str, **extra: Any) -> dict[str, Any]:
    """What the unsubscribe and preference pages show of a link."""
    settings = current.settings()
    return {
        "token": token,
        "masked": mask(claims.address),
        "purpose": link_purpose(claims.purpose, settings.policy),
        "mailbox": settings.unsubscribe_mailbox,
        "can_manage": claims.kind == LinkKind.PREFERENCES,
        **extra,
    }


def record_unsubscribe(claims: LinkClaims, purpose: str, source: str) -> UnsubscribeOutcome:
    """The unsubscribe page's form, and the preference page's "Unsubscribe from everything"."""
    session = current.db_session()
    if folded := folding.fold_for_address(session, claims.address):
        session.commit()
        folding.count(folded)
    outcome = unsubscribe(
        session,
        current.vault(),
        current.settings().policy,
        claims.address,
        purpose,
        event_context(claims, source, **minted_by(claims)),
        alarm_rule(),
    )
    session.commit()
    if outcome.recorded:
        metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, source).inc()
    if outcome.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    return outcome
