"""`POST /v1/inbound/mail`: one unsubscribe mail, as the mailbox received it.

Whoever reads UNSUBSCRIBE_MAILBOX (a mail server's pipe, or `suppression mailbox
poll`, which calls the same service) posts each message here raw (`message/rfc822`).
What the mail names and what is recorded is services/inbound/mail_unsubscribes.py's
answer: by the link token the mailto carried, or by an authenticated `From`, with
source `mailto`; a repeat records nothing, and the body is never stored.
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema, fields

from suppression.api.auth import current_actor, protected
from suppression.app import current
from suppression.domain.inbound_mail import InboundMail, UnreadableMail, read_mail
from suppression.services.inbound.mail_unsubscribes import MailOutcome, MailReader, opt_out_by_mail
from suppression.services.staff.api_keys import Role
from suppression.worker.mailbox_polling import count_answer
from suppression.worker.one_click_folding import alarm_rule

blp = Blueprint("inbound_mail", __name__, url_prefix="/v1", description="Unsubscribe mails")

MAIL_TYPE = "message/rfc822"

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
        metadata={"enum": [outcome.value for outcome in MailOutcome]},
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
    session = current.db_session()
    settings = current.settings()
    answer = opt_out_by_mail(
        session,
        current.vault(),
        settings,
        alarm_rule(settings.links),
        mail,
        MailReader(current.runtime().link_tokens, received_by=current_actor()),
        current.now(),
    )
    session.commit()
    count_answer(answer)
    return {
        "outcome": answer.outcome.value,
        "reason": answer.reason,
        "matched_by": answer.matched_by,
    }
