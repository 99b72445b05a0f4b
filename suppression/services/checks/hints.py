"""Country hints of a check list, normalised once per distinct text."""

from __future__ import annotations

from typing import Any

from suppression.domain.jurisdictions import UnknownCountry, normalise_country


class HintNormaliser:
    """Country hints repeat across a list; each distinct text is parsed once."""

    def __init__(self) -> None:
        self._known: dict[str, str | None] = {}

    def __call__(self, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise UnknownCountry(f"country must be a string, not {type(value).__name__}")
        try:
            country = self._known[value]
        except KeyError:
            try:
                country = normalise_country(value)
            except UnknownCountry:
                country = None
            self._known[value] = country
        if country is None:
            raise UnknownCountry(f"unknown country code {value!r}")
        return country
