"""HTTP for connectors: pooled sessions, timeouts, and platform answers mapped
to the failure kinds of `base`. Exceptions never carry a URL (Keap's REST
paths hold the address) or a credential."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from suppression.connectors.base import (
    AuthError,
    DestinationError,
    PermanentError,
    RateLimited,
    TransientError,
    redact,
)

USER_AGENT = "suppression-service/1 (+destination sync)"


class _RedactAddresses(logging.Filter):
    """urllib3 logs request lines at DEBUG; Keap's paths hold the address."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = ()
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactAddresses())


class Http:
    """One pooled session per connector; every call bounded by a timeout."""

    def __init__(self, platform: str, timeout: float, pool_size: int = 4):
        self.platform = platform
        self.timeout = timeout
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.session.mount("https://", adapter)
        self.session.mount("http://", adapter)
        self.session.headers["User-Agent"] = USER_AGENT

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
    ) -> requests.Response:
        try:
            return self.session.request(
                method,
                url,
                headers=dict(headers or {}),
                json=json_body,
                data=data,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.Timeout:
            raise TransientError(f"{self.platform}: no answer within {self.timeout:g} s") from None
        except requests.ConnectionError:
            raise TransientError(f"{self.platform}: could not connect") from None
        except requests.RequestException as exc:
            raise TransientError(
                f"{self.platform}: request failed ({type(exc).__name__})"
            ) from None

    def close(self) -> None:
        self.session.close()


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds (delta-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def body_json(response: requests.Response) -> Any:
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        return None


def status_error(platform: str, response: requests.Response, detail: str = "") -> DestinationError:
    """The usual meaning of an HTTP status, for platforms without finer codes."""
    status = response.status_code
    message = f"{platform}: HTTP {status}" + (f": {detail}" if detail else "")
    if status == 429:
        return RateLimited(message, retry_after_seconds(response.headers.get("Retry-After")))
    if status in (401, 403):
        return AuthError(message)
    if status in (408, 409, 423, 425) or status >= 500:
        return TransientError(message, retry_after_seconds(response.headers.get("Retry-After")))
    return PermanentError(message)
