"""Wire schemas. The contract is API.md; these never follow table changes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate, validates_schema

from suppression.api.fields import (
    COUNTRY_CODES,
    MAX_EVIDENCE_BYTES,
    Country,
    Email,
    Evidence,
    Purpose,
    RawList,
    Text,
    Time,
)
from suppression.domain.policy import Reason

CONSENT_STATUSES = ("opted_in", "opted_out")
BLOCK_KINDS = ("hard_bounce", "complaint", "restriction", "objection", "lift_restriction")
MAX_CLOCK_SKEW = timedelta(minutes=5)


class QuerySchema(Schema):
    """Query parameters, each given at most once: a second value would be dropped
    unchecked (`?actor=a&actor=<anything>`), so it is refused instead."""

    @pre_load
    def given_once(self, data: Any, **_kwargs: Any) -> Any:
        getlist = getattr(data, "getlist", None)  # webargs' proxy of request.args
        if getlist is not None:
            repeated = {
                name: ["Give this parameter once."]
                for name, field in self.fields.items()
                if len(getlist(field.data_key or name)) > 1
            }
            if repeated:
                raise ValidationError(repeated)
        return data


class EvidenceMixin(Schema):
    source = Text(validate=validate.Length(min=1, max=100))
    occurred_at = Time(
        metadata={
            "description": "When it happened (default: now); not later than now "
            "(5 minutes of clock skew allowed)"
        }
    )
    evidence = Evidence(
        metadata={
            "description": "Free evidence: form, page, text shown; stored sealed; "
            f"at most {MAX_EVIDENCE_BYTES} bytes as compact UTF-8 JSON; no NUL in its "
            "keys or strings, at any depth"
        }
    )
    campaign = Text(validate=validate.Length(max=200))
    notice_version = Text(validate=validate.Length(max=100))


class ConsentCreateSchema(EvidenceMixin):
    email = Email(required=True)
    purpose = Purpose(required=True, allow_all=True)
    status = Text(required=True, validate=validate.OneOf(CONSENT_STATUSES))
    country = Country()
    country_source = Text(
        load_default="hint",
        validate=validate.OneOf(("hint", "declared")),
        metadata={"description": "declared: the person chose it; hint: a guess (default)"},
    )
    source = Text(required=True, validate=validate.Length(min=1, max=100))


class BlockSchema(EvidenceMixin):
    email = Email(required=True)
    kind = Text(required=True, validate=validate.OneOf(BLOCK_KINDS))
    country = Country()


class BlockRequestSchema(BlockSchema):
    """One event, or `{"events": [...]}` with up to 10,000 of them."""

    OPENAPI = {
        "oneOf": [
            {"required": ["email", "kind"], "not": {"required": ["events"]}},
            {
                "required": ["events"],
                "not": {"anyOf": [{"required": ["email"]}, {"required": ["kind"]}]},
            },
        ]
    }

    email = Email()
    kind = Text(validate=validate.OneOf(BLOCK_KINDS))
    events = fields.List(fields.Nested(BlockSchema), validate=validate.Length(min=1, max=10_000))

    @validates_schema
    def one_form(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if "events" in data:
            if "email" in data or "kind" in data:
                raise ValidationError("Send either one event or `events`, not both.")
            return
        missing = {
            f: ["Missing data for required field."] for f in ("email", "kind") if f not in data
        }
        if missing:
            raise ValidationError(missing)


class BatchRecordedSchema(Schema):
    recorded = fields.Integer()


class RelationshipSchema(EvidenceMixin):
    email = Email(required=True)
    kind = Text(required=True, validate=validate.OneOf(("purchase", "inquiry")))


class ConsentStateSchema(Schema):
    status = fields.String()
    changed_at = fields.String()
    source = fields.String()


class DecisionSchema(Schema):
    sendable = fields.Boolean()
    reason = fields.String(allow_none=True, validate=validate.OneOf([r.value for r in Reason]))


class BlockStateSchema(Schema):
    kind = fields.String()
    since = fields.String()
    source = fields.String()


class SubjectStateSchema(Schema):
    email = fields.String()
    country = fields.String(allow_none=True)
    country_source = fields.String(allow_none=True)
    consents = fields.Dict(keys=fields.String(), values=fields.Nested(ConsentStateSchema))
    blocks = fields.List(fields.Nested(BlockStateSchema))
    decisions = fields.Dict(keys=fields.String(), values=fields.Nested(DecisionSchema))
    erased_at = fields.String(allow_none=True)


class CheckEntrySchema(Schema):
    """An entry of a check list with a country hint; it only describes the entry in
    the document: api/checks.py reads the list in one pass."""

    email = Text(required=True, metadata={"description": "As in a plain entry"})
    country = Country(
        allow_none=True,
        metadata={
            "enum": [*COUNTRY_CODES, ""],
            "description": "A hint (ISO 3166-1 alpha-2, case-insensitive); empty: none",
        },
    )


class CheckRequestSchema(Schema):
    purpose = Purpose(load_default="email_marketing")
    addresses = RawList(
        required=True,
        items=(
            {
                "type": "string",
                "description": "An address as it stands in the list; one that is not "
                "an address is answered `invalid`",
            },
            CheckEntrySchema,
        ),
        metadata={"description": 'Strings, or objects {"email", "country"?} with a country hint'},
    )


class CheckQuerySchema(QuerySchema):
    detail = Text(validate=validate.OneOf(("all",)))


class CheckCsvQuerySchema(QuerySchema):
    purpose = Purpose(load_default="email_marketing")
    # marshmallow's metaclass takes declared fields off the class, so this shadows
    # no Schema.only at run time; its typing sees a Schema attribute redefined.
    only = Text(  # type: ignore[assignment]
        load_default="all", validate=validate.OneOf(("sendable", "suppressed", "all"))
    )


class SuppressedSchema(Schema):
    email = fields.Raw()
    reason = fields.String()


class ResultSchema(Schema):
    email = fields.Raw()
    sendable = fields.Boolean()
    reason = fields.String(allow_none=True)


class CheckResponseSchema(Schema):
    purpose = fields.String()
    total = fields.Integer()
    sendable = fields.Integer()
    invalid = fields.Integer()
    suppressed = fields.List(fields.Nested(SuppressedSchema))
    results = fields.List(fields.Nested(ResultSchema))
