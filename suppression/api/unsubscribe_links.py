"""POST /v1/unsubscribe-links: the links and the List-Unsubscribe headers for one
recipient, or for up to 100,000 in one call (in input order).

Each recipient gets two tokens: the unsubscribe token (`url`, the only link in the
header, which only opts out) and the preference token (`preferences_url`, for the
mail's body). Minting stores nothing: a token carries its kind, the address
(encrypted), the purpose, the campaign, the time and the minting key's id, and the
pages verify it. A batch is validated and minted in one pass over the raw JSON
list, not one marshmallow field per entry.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Response, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from suppression.api.auth import protected
from suppression.api.fields import (
    EMAIL_DESCRIPTION,
    EMAIL_DOCUMENTATION,
    Purpose,
    RawList,
    Text,
)
from suppression.app import current
from suppression.app.links import PREFERENCES_PATH, UNSUBSCRIBE_PATH, link_tokens
from suppression.domain.addresses import canonicalise
from suppression.domain.errors import InvalidInput
from suppression.domain.policy import ALL_PURPOSES
from suppression.domain.text import UNSTORABLE_MESSAGE, is_storable
from suppression.domain.tokens import (
    MAX_CAMPAIGN_BYTES,
    ClaimsError,
    LinkKind,
    encode_campaign,
    encode_issued,
    encode_minter,
    encode_purpose,
    link_fields,
    list_unsubscribe_headers,
    unsubscribe_mailto,
)
from suppression.services.staff.api_keys import Role

blp = Blueprint("unsubscribe_links", __name__, url_prefix="/v1", description="Unsubscribe links")

MAX_RECIPIENTS = 100_000
MAX_ERRORS_SHOWN = 100
RECIPIENT_FIELDS = frozenset({"email", "purpose", "campaign"})


CAMPAIGN_DESCRIPTION = (
    f"Recorded with the opt-out; at most {MAX_CAMPAIGN_BYTES} bytes (UTF-8), no NUL."
)


class RecipientSchema(Schema):
    """A recipient of a batch; it only describes the entry in the document: the
    view reads the list in one pass (Minter.entry)."""

    email = Text(required=True, metadata=EMAIL_DOCUMENTATION)
    purpose = Purpose(allow_all=True, metadata={"description": "Default: the batch's"})
    campaign = Text(
        allow_none=True,
        validate=validate.Length(max=MAX_CAMPAIGN_BYTES),
        metadata={"description": CAMPAIGN_DESCRIPTION + " Default: the batch's."},
    )


class LinkRequestSchema(Schema):
    # One recipient, or a batch: never both.
    OPENAPI = {
        "oneOf": [
            {"required": ["email"], "not": {"required": ["recipients"]}},
            {"required": ["recipients"], "not": {"required": ["email"]}},
        ]
    }

    email = Text(
        metadata={
            **EMAIL_DOCUMENTATION,
            "description": "One recipient (or use `recipients`). " + EMAIL_DESCRIPTION,
        }
    )
    purpose = Purpose(
        allow_all=True,
        metadata={
            "description": "A configured purpose or `all`; default the first of PURPOSES "
            "(email_marketing). In a batch: the default for every recipient.",
        },
    )
    campaign = Text(
        allow_none=True,
        validate=validate.Length(max=MAX_CAMPAIGN_BYTES),
        metadata={"description": CAMPAIGN_DESCRIPTION + " In a batch: the default."},
    )
    recipients = RawList(
        items=({**EMAIL_DOCUMENTATION, "type": "string"}, RecipientSchema),
        metadata={
            "description": f"Up to {MAX_RECIPIENTS:,} recipients: objects "
            '{"email", "purpose"?, "campaign"?} or plain address strings',
            "minItems": 1,
            "maxItems": MAX_RECIPIENTS,
        },
    )


class LinkHeadersSchema(Schema):
    list_unsubscribe = fields.String(
        data_key="List-Unsubscribe", metadata={"example": "<https://optout.example.com/u/AQE…>"}
    )
    list_unsubscribe_post = fields.String(
        data_key="List-Unsubscribe-Post", metadata={"example": "List-Unsubscribe=One-Click"}
    )


class LinkSchema(Schema):
    email = fields.String(metadata={"description": "As sent"})
    url = fields.String(
        metadata={
            "description": "The one-click unsubscribe URL (the header's link): it can only opt out"
        }
    )
    preferences_url = fields.String(
        metadata={
            "description": "The preference page, for the mail's body (a token of its own; "
            "opting back in there needs the mailbox to confirm)"
        }
    )
    headers = fields.Nested(LinkHeadersSchema)


class LinkAnswerSchema(LinkSchema):
    links = fields.List(
        fields.Nested(LinkSchema), metadata={"description": "The batch form: in input order"}
    )


class RecipientError(Exception):
    def __init__(self, messages: dict[str, list[str]]):
        super().__init__("invalid recipient")
        self.messages = messages

    def as_input_error(self) -> InvalidInput:
        """For the single form and the batch defaults: the fields named at the top."""
        names = ", ".join(sorted(self.messages))
        return InvalidInput(f"Invalid input: {names}.", {"json": self.messages})


class Minter:
    """Everything that is the same for a whole call is worked out once."""

    def __init__(self, purposes: tuple[str, ...], default_purpose: str, campaign: Any, minter: int):
        settings = current.settings()
        self._tokens = link_tokens()
        self._unsubscribe = settings.public_base_url + UNSUBSCRIBE_PATH
        self._preferences = settings.public_base_url + PREFERENCES_PATH
        self._mailbox = settings.unsubscribe_mailbox
        self._plus = settings.unsubscribe_mailbox_plus
        self._issued = encode_issued(current.now())
        self._minter = encode_minter(minter)
        self._fields: dict[tuple[bytes, bytes], tuple[bytes, bytes]] = {}
        self._purposes = {p: encode_purpose(p) for p in (*purposes, ALL_PURPOSES)}
        self._choices = ", ".join((*purposes, ALL_PURPOSES))
        self._campaigns: dict[str, bytes] = {}
        self.default_purpose = self.purpose(default_purpose)
        self.default_campaign = self.campaign(campaign)

    def purpose(self, value: Any) -> bytes:
        encoded = self._purposes.get(value) if isinstance(value, str) else None
        if encoded is None:
            raise RecipientError({"purpose": [f"Must be one of: {self._choices}."]})
        return encoded

    def campaign(self, value: Any) -> bytes:
        if value is None:
            return b"\x00"
        if not isinstance(value, str):
            raise RecipientError({"campaign": ["Not a valid string."]})
        if not is_storable(value):  # recorded with the opt-out: it must be storable
            raise RecipientError({"campaign": [UNSTORABLE_MESSAGE]})
        encoded = self._campaigns.get(value)
        if encoded is None:
            try:
                encoded = self._campaigns[value] = encode_campaign(value)
            except ClaimsError as exc:
                raise RecipientError(
                    {"campaign": [f"At most {MAX_CAMPAIGN_BYTES} bytes (UTF-8) in a link."]}
                ) from exc
        return encoded

    def _kinds(self, purpose: bytes, campaign: bytes) -> tuple[bytes, bytes]:
        """The encoded claims of both tokens but the address, once per combination."""
        found = self._fields.get((purpose, campaign))
        if found is None:
            found = self._fields[(purpose, campaign)] = (
                link_fields(LinkKind.UNSUBSCRIBE, self._issued, self._minter, purpose, campaign),
                link_fields(LinkKind.PREFERENCES, self._issued, self._minter, purpose, campaign),
            )
        return found

    def link(self, email: Any, purpose: bytes, campaign: bytes) -> dict[str, Any]:
        canonical = canonicalise(email) if isinstance(email, str) else None
        if canonical is None:
            raise RecipientError({"email": ["Not a valid email address."]})
        unsubscribe, preferences = self._kinds(purpose, campaign)
        mint = self._tokens.mint_encoded
        token = mint(canonical, unsubscribe)
        url = self._unsubscribe + token
        mailto = unsubscribe_mailto(self._mailbox, token, self._plus) if self._mailbox else None
        return {
            "email": email,
            "url": url,
            "preferences_url": self._preferences + mint(canonical, preferences),
            "headers": list_unsubscribe_headers(url, mailto),
        }

    def entry(self, entry: Any) -> dict[str, Any]:
        if isinstance(entry, str):
            return self.link(entry, self.default_purpose, self.default_campaign)
        if not isinstance(entry, dict):
            raise RecipientError(
                {"_schema": ['Must be an object {"email", "purpose"?, "campaign"?} or a string.']}
            )
        unknown = entry.keys() - RECIPIENT_FIELDS
        if unknown:
            raise RecipientError({str(name): ["Unknown field."] for name in sorted(unknown)})
        if "email" not in entry:
            raise RecipientError({"email": ["Missing data for required field."]})
        purpose = self.purpose(entry["purpose"]) if "purpose" in entry else self.default_purpose
        campaign = (
            self.campaign(entry["campaign"]) if "campaign" in entry else self.default_campaign
        )
        return self.link(entry["email"], purpose, campaign)


@blp.route("/unsubscribe-links")
class UnsubscribeLinks(MethodView):
    @protected(blp, Role.SENDER)
    @blp.arguments(LinkRequestSchema)
    @blp.response(200, LinkAnswerSchema)
    def post(self, data: dict[str, Any]) -> Response:
        """Mint unsubscribe links: `{"email", "purpose"?, "campaign"?}` answers one link,
        `{"recipients": [...]}` answers `{"links": [...]}` in input order.

        Put `headers` in the mail as they are (and sign both with DKIM); put
        `preferences_url` (or `url`) in the body. `url` only opts out; the
        preference page can also ask to opt back in, which the mailbox must confirm.
        Links stay valid for UNSUBSCRIBE_LINK_DAYS.
        """
        purposes = current.settings().purposes
        try:
            minter = Minter(
                purposes, data.get("purpose", purposes[0]), data.get("campaign"), g.api_key.id
            )
        except RecipientError as exc:
            raise exc.as_input_error() from exc
        if "recipients" in data:
            if "email" in data:
                raise InvalidInput(
                    "send either one recipient or `recipients`",
                    {"json": {"email": ["Send either `email` or `recipients`, not both."]}},
                )
            body: dict[str, Any] = {"links": _batch(minter, data["recipients"])}
        elif "email" in data:
            try:
                body = minter.link(data["email"], minter.default_purpose, minter.default_campaign)
            except RecipientError as exc:
                raise exc.as_input_error() from exc
        else:
            raise InvalidInput(
                "no recipient", {"json": {"email": ["Send `email` or `recipients`."]}}
            )
        return Response(
            json.dumps(body, separators=(",", ":"), ensure_ascii=False),
            mimetype="application/json",
        )


def _batch(minter: Minter, recipients: list[Any]) -> list[dict[str, Any]]:
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise InvalidInput(
            f"a batch holds 1 to {MAX_RECIPIENTS} recipients",
            {"json": {"recipients": [f"Between 1 and {MAX_RECIPIENTS} recipients."]}},
        )
    links: list[dict[str, Any]] = []
    errors: dict[int, dict[str, list[str]]] = {}
    failed = 0
    entry = minter.entry
    for position, recipient in enumerate(recipients):
        try:
            links.append(entry(recipient))
        except RecipientError as exc:
            failed += 1
            if len(errors) < MAX_ERRORS_SHOWN:
                errors[position] = exc.messages
    if failed:
        raise InvalidInput(
            f"{failed} recipient(s) are not valid; no link was minted",
            {"json": {"recipients": errors}},
        )
    return links
