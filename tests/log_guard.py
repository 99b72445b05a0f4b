"""The suite-wide guard that no log line carries an email address.

tests/conftest.py installs one AddressLogGuard on the root logger for the whole
session; records from the service's loggers (and the HTTP servers' access logs)
that contain something shaped like local@domain.tld fail the run at its end.
Masked forms (j***@example.com) are what the service may log and do not match:
`*` is not accepted in the local part."""

from __future__ import annotations

import logging
import re

# local@domain.tld: a local part without spaces, `*`, quotes or brackets; a dotted
# domain (Unicode or punycode) whose last label is letters (so user@127.0.0.1 and
# version pins like x@3.11 are not addresses).
ADDRESS = re.compile(
    r"[^\s@*<>()\[\]{},;:\"'`/\\|=]+@(?:[^\s@*<>()\[\]{},;:\"'`/\\|=.]+\.)+"
    r"(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)(?![\w-])",
    re.IGNORECASE,
)
GUARDED = ("suppression", "werkzeug", "gunicorn")


def find_addresses(text: str) -> list[str]:
    return ADDRESS.findall(text)


def _masked(text: str) -> str:
    return ADDRESS.sub(lambda m: m.group(0)[0] + "***@" + m.group(0).rsplit("@", 1)[1], text)


class AddressLogGuard(logging.Handler):
    """Keeps every guarded record that holds an address (message or traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.seen = 0
        self.leaks: list[str] = []
        self._tracebacks = logging.Formatter()

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(GUARDED):
            return
        self.seen += 1
        try:
            text = record.getMessage()
        except Exception:  # a broken format string is no address
            text = str(record.msg)
        if record.exc_info:
            text += "\n" + self._tracebacks.formatException(record.exc_info)
        if find_addresses(text):
            self.leaks.append(f"{record.name} {record.levelname}: {_masked(text)[:500]}")

    def report(self) -> str:
        return "\n".join(self.leaks)
