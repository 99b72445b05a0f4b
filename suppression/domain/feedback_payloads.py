"""Reading the sending platforms' JSON notifications (domain/feedback_*.py): the
body as JSON, and the few field shapes they share (text, Unix and ISO 8601
times). Whatever cannot be read is a FeedbackRefused(400) saying what."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from suppression.domain.feedback import FeedbackRefused


def read_json(body: bytes, platform: str) -> object:
    """The body as JSON; FeedbackRefused(400) naming why it is not."""
    try:
        return json.loads(body)
    except RecursionError:
        raise FeedbackRefused(400, f"the {platform} notification is nested too deeply") from None
    except ValueError as error:  # JSONDecodeError, and UnicodeDecodeError for non-UTF-8 bytes
        raise FeedbackRefused(400, f"the {platform} notification is not JSON ({error})") from None


def text(value: object) -> str | None:
    """A string field, or None when it is missing, empty or not a string."""
    return value if isinstance(value, str) and value else None


def from_unix(value: object) -> datetime | None:
    """A Unix time in seconds (an integer, a float or digits), as UTC; None if unreadable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        return None


def from_iso(value: object) -> datetime | None:
    """An ISO 8601 time with its offset, as UTC; None if unreadable or without an offset."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo is not None else None
