"""Domain-level errors raised by services. They carry no HTTP status:
`api/errors.py` maps them to the API's one error shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class SuppressionError(Exception):
    """Base class: a message for people, and optional per-field details."""

    def __init__(self, message: str, errors: Mapping[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.errors = dict(errors or {})


class InvalidInput(SuppressionError):
    """The request is well-formed but a value is not acceptable."""


class MalformedInput(SuppressionError):
    """The body could not be read at all (bad CSV, bad encoding)."""


class NotFound(SuppressionError):
    pass


class Conflict(SuppressionError):
    pass


class FirstErrors:
    """Per-position errors of a long input: the first `limit` kept, all counted.

    A list of a million bad entries must not become a million error entries in
    memory and in the answer; `as_dict` lists the first ones and says how many
    there are in all under `_total`.
    """

    LIMIT = 100

    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self.total = 0
        self.first: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return self.total > 0

    def add(self, position: int, message: str) -> None:
        self.total += 1
        if len(self.first) < self.limit:
            self.first.setdefault(str(position), []).append(message)

    def as_dict(self) -> dict[str, Any]:
        listed: dict[str, Any] = dict(self.first)
        if self.total > len(self.first):
            listed["_total"] = self.total
        return listed

    def summary(self, what: str) -> str:
        shown = len(self.first)
        more = f"; the first {shown} are listed" if self.total > shown else ""
        return f"{self.total} {what}{more}"
