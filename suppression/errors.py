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
