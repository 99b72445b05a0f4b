"""The suite-wide guard that no log line carries an email address, a link token
or an API key.

tests/conftest.py installs one AddressLogGuard on the root logger for the whole
session; records from the service's loggers (and the HTTP servers' access logs)
that contain something shaped like local@domain.tld, like a link token (base64url
of format 1 or 2 and a key id: "AQ" or "Ag" and 38 or more characters of
[A-Za-z0-9_-], domain/tokens.py) or like an API key ("sk_" and 43 such
characters) fail the run at its end. Masked forms (j***@example.com) are what the
service may log and do not match: `*` is not accepted in the local part; nor do
the placeholders of suppression/observability/redaction.py."""

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
TOKEN = re.compile(r"(?<![A-Za-z0-9_-])A[Qg][A-Za-z0-9_-]{38,}")
API_KEY = re.compile(r"(?<![A-Za-z0-9_-])sk_[A-Za-z0-9_-]{43}")
GUARDED = ("suppression", "werkzeug", "gunicorn")


def find_addresses(text: str) -> list[str]:
    return ADDRESS.findall(text)


def find_secrets(text: str) -> list[str]:
    """Link tokens and API keys."""
    return TOKEN.findall(text) + API_KEY.findall(text)


def _masked(text: str) -> str:
    text = ADDRESS.sub(lambda m: m.group(0)[0] + "***@" + m.group(0).rsplit("@", 1)[1], text)
    text = TOKEN.sub(lambda m: m.group(0)[:4] + "…(a link token)", text)
    return API_KEY.sub("sk_…(an API key)", text)


def rendered(record: logging.LogRecord) -> str:
    """What a handler writes of a record: its message and its traceback (the
    exc_text a filter left, as logging.Formatter prints it, else exc_info)."""
    try:
        text = record.getMessage()
    except Exception:  # a broken format string is no address
        text = str(record.msg)
    if record.exc_text:
        text += "\n" + record.exc_text
    elif record.exc_info:
        text += "\n" + logging.Formatter().formatException(record.exc_info)
    return text


class AddressLogGuard(logging.Handler):
    """Keeps every guarded record that holds an address, a link token or an API key
    (message or traceback)."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self.seen = 0
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if not record.name.startswith(GUARDED):
            return
        self.seen += 1
        text = rendered(record)
        if find_addresses(text) or find_secrets(text):
            self.leaks.append(f"{record.name} {record.levelname}: {_masked(text)[:500]}")

    def report(self) -> str:
        return "\n".join(self.leaks)
