"""Wire fields shared by the schemas: text, addresses, countries, evidence, times.

Each field also states in the OpenAPI document what it accepts (pattern, length,
format, enum), so that a client generated from /openapi.json sends valid requests.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from suppression.domain.addresses import MAX_ADDRESS, MAX_LOCAL, InvalidAddress, canonicalise_strict
from suppression.domain.chain import canonical_json
from suppression.domain.jurisdictions import ISO_COUNTRIES, UnknownCountry, normalise_country
from suppression.domain.text import UNSTORABLE_MESSAGE, is_storable, unstorable_path


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Documented for every string the API takes. A lone surrogate cannot be written
# as a pattern both ECMA-262 and Python read alike; valid UTF-8 JSON has none.
STORABLE_PATTERN = "^[^\\u0000]*$"


def _documented(kwargs: dict[str, Any], **properties: Any) -> dict[str, Any]:
    """kwargs whose metadata (what apispec writes into the document) holds
    `properties` unless the field's own metadata says otherwise."""
    kwargs["metadata"] = {**properties, **kwargs.get("metadata", {})}
    return kwargs


class Text(fields.String):
    """A string that can be stored: no NUL and no lone surrogate (domain/text.py).
    Every string the API takes is one of these, so such input is a 422 naming the
    field, never a driver error."""

    def __init__(self, **kwargs: Any):
        super().__init__(**_documented(kwargs, pattern=STORABLE_PATTERN))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_storable(text):
            raise ValidationError(UNSTORABLE_MESSAGE)
        return text


# Names email-validator refuses as the end of a domain (its SPECIAL_USE_DOMAIN_NAMES;
# tests/api/test_openapi_document.py keeps the two equal).
SPECIAL_USE_DOMAINS = ("arpa", "invalid", "local", "localhost", "onion", "test")


def _any_case(word: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else c for c in word)


def _email_pattern() -> str:
    """The ASCII addresses a single write accepts, as a pattern ECMA-262 and Python
    read alike: a dot-atom local part of at most 64 characters; domain labels of
    letters, digits and inner hyphens (no `ab--` label: that is IDNA's form, which
    a client sends as Unicode); a top-level label of letters that is not one of
    the special-use names."""
    atext = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
    label = "(?![A-Za-z0-9]{2}--)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    special = "|".join(_any_case(name) for name in SPECIAL_USE_DOMAINS)
    top = f"(?!(?:{special})$)(?![A-Za-z]{{2}}--)[A-Za-z][A-Za-z0-9-]{{0,61}}[A-Za-z]"
    return f"^(?=[^@]{{1,{MAX_LOCAL}}}@){atext}+(?:\\.{atext}+)*@(?:{label}\\.)+{top}$"


EMAIL_PATTERN = _email_pattern()
EMAIL_DESCRIPTION = (
    "An email address (case, and spaces around it, do not matter). The pattern is "
    "its ASCII form; Unicode local parts and domains (IDNA) are accepted too. Not "
    "accepted: quoted local parts, IP-literal domains, and domains under "
    + ", ".join(f".{name}" for name in SPECIAL_USE_DOMAINS)
    + "."
)
# How every address the API takes is described (single writes, links, lists).
EMAIL_DOCUMENTATION = {
    "format": "email",
    "maxLength": MAX_ADDRESS,
    "pattern": EMAIL_PATTERN,
    "description": EMAIL_DESCRIPTION,
    "example": "jane.doe@example.com",
}


class Email(Text):
    """A single address, validated strictly and loaded in canonical form."""

    def __init__(self, **kwargs: Any):
        super().__init__(**_documented(kwargs, **EMAIL_DOCUMENTATION))

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonicalise_strict(text)
        except InvalidAddress as exc:
            raise ValidationError(str(exc)) from exc


COUNTRY_CODES = sorted(ISO_COUNTRIES)


class Country(Text):
    """ISO 3166-1 alpha-2, case-insensitive in, upper-case out."""

    def __init__(self, **kwargs: Any):
        super().__init__(
            **_documented(
                kwargs,
                enum=COUNTRY_CODES,
                example="DE",
                description="ISO 3166-1 alpha-2 (case-insensitive; UK means GB)",
            )
        )

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return normalise_country(text)
        except UnknownCountry as exc:
            raise ValidationError(str(exc)) from exc


# Free evidence is stored whole (sealed) with every event: a cap keeps one
# request from storing megabytes per event.
MAX_EVIDENCE_BYTES = 16 * 1024


class Evidence(fields.Dict):
    """Free JSON evidence (an object): keys and strings at any depth storable text,
    and at most MAX_EVIDENCE_BYTES as canonical JSON, the form in which it is sealed
    and digested."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("keys", fields.String())
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        evidence = super()._deserialize(value, attr, data, **kwargs)
        where = unstorable_path(evidence)
        if where is not None:
            raise ValidationError(f"At {where}: {UNSTORABLE_MESSAGE}")
        try:
            size = len(canonical_json(evidence))
        except RecursionError as exc:
            raise ValidationError("Nested too deeply.") from exc
        if size > MAX_EVIDENCE_BYTES:
            raise ValidationError(
                f"At most {MAX_EVIDENCE_BYTES} bytes of JSON (UTF-8); this is {size}."
            )
        return evidence


class Time(fields.AwareDateTime):
    """RFC 3339; a time without a zone is taken as UTC."""

    def __init__(self, **kwargs: Any):
        super().__init__(format="iso", default_timezone=UTC, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> str | None:
        return rfc3339(value)


class Purpose(Text):
    """A configured marketing purpose (PURPOSES), or `all` where `allow_all`. The
    views check it against the settings (services.consents.check_purpose); the
    document lists the configured ones (api/openapi.py)."""

    def __init__(self, *, allow_all: bool = False, **kwargs: Any):
        self.allow_all = allow_all
        super().__init__(**_documented(kwargs, example="email_marketing"))


class RawList(fields.Field):
    """A JSON array passed through untouched: a million items are checked in one
    pass by the service, not one marshmallow field each. `items` says in the
    document what an entry may be: JSON schemas, or marshmallow schemas that only
    describe it (api/openapi.py)."""

    def __init__(self, *, items: tuple[dict[str, Any] | type[Any], ...], **kwargs: Any):
        self.documented_items = items
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("Must be a list.")
        return value
