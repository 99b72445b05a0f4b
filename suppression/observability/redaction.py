"""Redacting the log lines that quote a request: no link token, API key or address.

A link's token is its credential, and it travels in the path: `/u/<token>`,
`/preferences/<token>`, `/confirm/<token>`. Whatever logs a request's path logs
it: Flask's "Exception on /u/... [POST]" before a 500, gunicorn's access log and
its "Error handling request ..." and "Invalid request from ..." lines, and
Werkzeug's development server. A filter on each of those loggers rewrites the
record before any handler sees it, traceback included: a link path keeps its
kind and loses its token, anything shaped like a token or an API key becomes a
placeholder, an address keeps its first letter and domain (`j***@example.com`).

The service's own loggers are not filtered: they never log any of these (the
test suite's log guard, tests/log_guard.py, holds them to it).
"""

from __future__ import annotations

import logging
import re

# gunicorn's and Werkzeug's loggers; the Flask app's (its import name) is added
# by create_app.
REQUEST_LOGGERS = ("gunicorn.error", "gunicorn.access", "werkzeug")

LINK_PATH = re.compile(r"(/(?:u|preferences|confirm)/)[^\s/?#\"'<>]+")
# A link token: base64url of format byte 1 or 2 and a key id (domain/tokens.py).
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])A[Qg][A-Za-z0-9_-]{38,}")
API_KEY = re.compile(r"sk_[A-Za-z0-9_-]{16,}")
ADDRESS = re.compile(
    r"([^\s@*<>()\[\]{},;:\"'`/\\|=])[^\s@*<>()\[\]{},;:\"'`/\\|=]*"
    r"@((?:[^\s@*<>()\[\]{},;:\"'`/\\|=.]+\.)+[^\W\d_]{2,})",
)


def redact(text: str) -> str:
    text = LINK_PATH.sub(r"\1[token]", text)
    text = TOKEN.sub("[token]", text)
    text = API_KEY.sub("sk_[key]", text)
    return ADDRESS.sub(r"\1***@\2", text)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback in place (it never drops one)."""

    _tracebacks = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what it said
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            # Handlers print exc_text when it is set, instead of formatting exc_info.
            record.exc_text = redact(self._tracebacks.formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install(*names: str) -> None:
    """Put the filter on these loggers (and on REQUEST_LOGGERS), once each."""
    for name in (*REQUEST_LOGGERS, *names):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
