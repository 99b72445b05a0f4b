"""`POST /v1/inbound/mail`: one unsubscribe mail, as the mailbox received it.

Whoever reads UNSUBSCRIBE_MAILBOX (a mail server's pipe, a poller) posts each
message here raw (`message/rfc822`). The recipient is named by the link token the
mailto carried (domain/inbound_mail.py finds it), or, without a valid one, by the
`From` address when the receiving server's Authentication-Results show a DKIM or
DMARC pass for its domain. The opt-out goes the way the unsubscribe page's does
(services/links/unsubscribes.py), with source `mailto`: a repeat records nothing.

Evidence is the Message-ID, the Date and the Authentication-Results (sealed with
the event's evidence); the body is searched for a token and dropped, never stored.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from suppression.api.auth import current_actor, protected
from suppression.app import current, folding
from suppression.app.links import read_token
from suppression.domain.addresses import canonicalise
from suppression.domain.inbound_mail import InboundMail, UnreadableMail, read_mail
from suppression.domain.policy import ALL_PURPOSES, EventAction
from suppression.domain.text import storable
from suppression.domain.tokens import LinkClaims, LinkKind, TokenError
from suppression.observability import metrics
from suppression.services.consents.recording import EventContext
from suppression.services.links.unsubscribes import (
    ACTOR,
    SOURCE_MAILTO,
    link_purpose,
    unsubscribe,
)
from suppression.services.staff.api_keys import Role
from suppression.worker.one_click_folding import alarm_rule

blp = Blueprint("inbound_mail", __name__, url_prefix="/v1", description="Unsubscribe mails")

MAIL_TYPE = "message/rfc822"
OPTED_OUT, ALREADY_OPTED_OUT, IGNORED = "opted_out", "already_opted_out", "ignored"
# Tokens that unsubscribe: the header's (the mailto's), and the preference token.
UNSUBSCRIBING_KINDS = (LinkKind.UNSUBSCRIBE, LinkKind.PREFERENCES)

MAIL_BODY = {
    "required": True,
    "description": (
        "One RFC 5322 message as received, headers and body (at most MAX_CONTENT_LENGTH "
        "bytes). The token is looked for in the Subject (`unsubscribe <token>`), in a "
        "`+<token>` sub-address of a To or Delivered-To address, then as the body's first "
        "token-like string."
    ),
    "content": {
        MAIL_TYPE: {
            "schema": {
                "type": "string",
                # A mail begins with a header field: its name, then a colon.
                "pattern": "^[!-9;-~]+:",
                "example": (
                    "From: Jane <jane@example.com>\r\nTo: unsubscribe@example.com\r\n"
                    "Subject: unsubscribe AgE...\r\nMessage-ID: <a1@example.com>\r\n\r\n"
                ),
            }
        }
    },
}


class InboundMailResultSchema(Schema):
    outcome = fields.String(
        metadata={"enum": [OPTED_OUT, ALREADY_OPTED_OUT, IGNORED]},
    )
    reason = fields.String(metadata={"description": "Why, in words"})
    matched_by = fields.String(
        allow_none=True,
        metadata={
            "enum": ["token", "dkim", "dmarc", None],
            "description": "What named the recipient; null when nobody was",
        },
    )


@blp.route("/inbound/mail")
class InboundMailView(MethodView):
    @protected(blp, Role.INBOUND)
    @blp.doc(requestBody=MAIL_BODY)
    @blp.response(200, InboundMailResultSchema)
    @blp.alt_response(400, response="DEFAULT_ERROR", description="Empty, or not a mail")
    @blp.alt_response(413, response="DEFAULT_ERROR", description="Over MAX_CONTENT_LENGTH")
    @blp.alt_response(415, response="DEFAULT_ERROR", description="Not message/rfc822")
    def post(self) -> dict[str, Any]:
        """Opt out the person an unsubscribe mail names (source `mailto`): by the link
        token it carries, else by its `From` address when the receiving server's
        Authentication-Results show DMARC or DKIM pass for that domain. Records
        nothing otherwise, and says why. A repeat records nothing."""
        if request.mimetype != MAIL_TYPE:
            abort(
                415, message=f"Send the mail as {MAIL_TYPE}, not {request.mimetype or 'nothing'}."
            )
        try:
            mail = read_mail(request.get_data(cache=False))
        except UnreadableMail as error:
            abort(400, message=f"Not a mail: {error}.")
        return _opt_out(mail)


def _opt_out(mail: InboundMail) -> dict[str, Any]:
    claims, refusal = _claims(mail.tokens)
    if claims is not None:
        ctx = _context(mail, "token", claims.campaign, _link_evidence(claims))
        return _record(claims.address, claims.purpose, ctx, "token")
    address = canonicalise(mail.sender) if mail.sender else None
    if address is None or mail.authenticated_by is None:
        unauthenticated = (
            "the From address is not authenticated (no DMARC or DKIM pass for its domain)"
            if address
            else "there is no single valid From address"
        )
        return {"outcome": IGNORED, "reason": f"{refusal}; {unauthenticated}", "matched_by": None}
    ctx = _context(mail, mail.authenticated_by, None, {})
    return _record(address, ALL_PURPOSES, ctx, mail.authenticated_by)


def _claims(tokens: tuple[str, ...]) -> tuple[LinkClaims | None, str]:
    """The first token that opens an unsubscribe, or None and why none did."""
    refusal = "the mail carries no unsubscribe token"
    for token in tokens:
        try:
            claims = read_token(token)
        except TokenError as error:
            refusal = f"its token is not valid ({error.problem.value})"
            continue
        if claims.kind in UNSUBSCRIBING_KINDS:
            return claims, ""
        refusal = "its token does not unsubscribe"
    return None, refusal


def _link_evidence(claims: LinkClaims) -> dict[str, Any]:
    return {
        "link_kind": claims.kind.name.lower(),
        "link_issued_at": claims.issued_at.isoformat().replace("+00:00", "Z"),
        "link_purpose": claims.purpose,
    }


def _context(
    mail: InboundMail, matched_by: str, campaign: str | None, link: dict[str, Any]
) -> EventContext:
    now = current.now()
    headers = {
        "message_id": mail.message_id,
        "date": mail.date,
        "authentication_results": mail.authentication_results,
    }
    evidence = {
        **link,
        "matched_by": matched_by,
        "received_by": current_actor(),
        **{name: storable(value) for name, value in headers.items() if value},
    }
    return EventContext(
        actor=ACTOR,
        source=SOURCE_MAILTO,
        occurred_at=now,
        recorded_at=now,
        # The caller is the mailbox's reader, not the person: no IP or agent of theirs.
        campaign=storable(campaign) if campaign else None,
        evidence=evidence,
    )


def _record(address: str, purpose: str, ctx: EventContext, matched_by: str) -> dict[str, Any]:
    session = current.db_session()
    if folded := folding.fold_for_address(session, address):
        session.commit()
        folding.count(folded)
    outcome = unsubscribe(
        session,
        current.vault(),
        current.settings().policy,
        address,
        purpose,
        ctx,
        alarm_rule(current.settings().links),
    )
    session.commit()
    if outcome.alarm is not None:
        metrics.UNSUBSCRIBE_ALARMS.inc()
    if not outcome.recorded:
        reason = "the recipient is opted out already"
        return {"outcome": ALREADY_OPTED_OUT, "reason": reason, "matched_by": matched_by}
    metrics.CONSENT_CHANGES.labels(EventAction.OPTED_OUT, SOURCE_MAILTO).inc()
    reason = f"opted out of {link_purpose(purpose, current.settings().policy)}"
    return {"outcome": OPTED_OUT, "reason": reason, "matched_by": matched_by}
