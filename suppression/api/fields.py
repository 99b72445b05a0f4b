"""Wire fields shared by the schemas: text, addresses, countries, evidence, times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from marshmallow import ValidationError, fields

from suppression.domain.addresses import InvalidAddress, canonicalise_strict
from suppression.domain.chain import canonical_json
from suppression.domain.jurisdictions import UnknownCountry, normalise_country
from suppression.domain.text import UNSTORABLE_MESSAGE, is_storable, unstorable_path


def rfc3339(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Text(fields.String):
    """A string that can be stored: no NUL and no lone surrogate (domain/text.py).
    Every string the API takes is one of these, so such input is a 422 naming the
    field, never a driver error."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not is_storable(text):
            raise ValidationError(UNSTORABLE_MESSAGE)
        return text


class Email(Text):
    """A single address, validated strictly and loaded in canonical form."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonicalise_strict(text)
        except InvalidAddress as exc:
            raise ValidationError(str(exc)) from exc


class Country(Text):
    """ISO 3166-1 alpha-2, case-insensitive in, upper-case out."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("metadata", {"example": "DE", "description": "ISO 3166-1 alpha-2"})
        super().__init__(**kwargs)

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


class RawList(fields.Field):
    """A JSON array passed through untouched: a million items are checked in one
    pass by the service, not one marshmallow field each."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> list[Any]:
        if not isinstance(value, list):
            raise ValidationError("Must be a list.")
        return value
