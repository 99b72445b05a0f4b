"""Logging: JSON lines in production, readable lines in development.

No address, link token or API key is ever logged: code logs subject ids or keyed
hashes only, and the loggers that quote request paths (Flask's, gunicorn's,
Werkzeug's) are redacted (observability/redaction.py).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from suppression.config.settings import Settings
from suppression.observability import redaction as log_redaction


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info or record.exc_text:
            # exc_text when set: a redacting filter wrote it (observability/redaction.py).
            if record.exc_text:
                entry["exc"] = record.exc_text
            elif record.exc_info:
                entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(settings: Settings, *request_loggers: str) -> None:
    """`request_loggers`: more loggers that quote request paths (the Flask app's)."""
    log_redaction.install(*request_loggers)
    root = logging.getLogger("suppression")
    if root.handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    if settings.is_production:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.INFO)
