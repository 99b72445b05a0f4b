"""Text that can be stored: no NUL character and no lone surrogate.

JSON may carry both (`"\\u0000"`, `"\\ud800"`). PostgreSQL refuses NUL in text
columns, and a lone surrogate has no UTF-8 form, so neither can be hashed, sealed,
stored or answered. Input is refused with a message naming the field; headers,
which are evidence rather than input, are cleaned instead (`storable`).
"""

from __future__ import annotations

import re
from typing import Any

UNSTORABLE_MESSAGE = "Contains a NUL character or a lone surrogate (\\u0000, \\ud800-\\udfff)."
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"


def is_storable(text: str) -> bool:
    return _UNSTORABLE.search(text) is None


def storable(text: str) -> str:
    """The text with each NUL and lone surrogate replaced by U+FFFD."""
    return _UNSTORABLE.sub(REPLACEMENT, text)


def unstorable_path(value: Any) -> str | None:
    """Where in a JSON value (keys and strings at any depth) a text that cannot be
    stored is, as `a.b[2]` (`.` for the value itself); None when all of it can be.
    Walked with a stack: a deep value costs no recursion."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if not is_storable(item):
                return storable(path) or "."
        elif isinstance(item, dict):
            for key, inner in reversed(item.items()):
                here = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not is_storable(key):
                    return storable(here)
                stack.append((here, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{n}]", inner) for n, inner in reversed(list(enumerate(item))))
    return None
