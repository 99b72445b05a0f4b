"""Meta custom audiences (Marketing API): remove people from audiences.

`DELETE /{audience_id}/users` per configured audience, optionally
`DELETE /act_{ad_account_id}/usersofanyaudience` (every audience of the ad
account) and `POST /{exclusion_audience_id}/users` (an exclusion audience).
Payload schema `EMAIL_SHA256`: SHA-256 hex of the trimmed, lower-cased
address; at most 10,000 rows a call. The token travels in the Authorization
header, never in a URL. Errors are Graph error codes, not HTTP statuses: an
error is judged by its code, whatever its `type` (`OAuthException` carries
throttling codes as well as token errors).

With an app secret configured, every call carries `appsecret_proof` (HMAC-SHA256
of the access token keyed with the app secret, hex), as
facebook/facebook-python-business-sdk facebook_business/session.py adds it;
apps with "Require App Secret" refuse calls without it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import requests

from suppression.connectors.base import (
    AuthError,
    DestinationError,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    TransientError,
)
from suppression.connectors.http import Http, body_json, retry_after_seconds
from suppression.domain.audience_hashes import meta_email_sha256

DEFAULT_BASE_URL = "https://graph.facebook.com/v25.0"
MAX_ROWS = 10_000
SCHEMA = "EMAIL_SHA256"

# Token and permission problems (Graph error handling page: 102 session, 190 token,
# 10 and 200-299 permissions; 463 and 467 are token expiry subcodes answered as codes).
AUTH_CODES = frozenset({10, 102, 190, 463, 467, *range(200, 300)})
# Throttling (Graph rate-limiting and error-code pages): 4 application, 17 user, 32
# page, 613 custom, 341 application limit, and the business-use-case codes.
BUSINESS_USE_CASE_CODES = frozenset(
    {80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009, 80014}
)
THROTTLE_CODES = frozenset({4, 17, 32, 341, 613}) | BUSINESS_USE_CASE_CODES
THROTTLE_SUBCODES = frozenset({2446079, 1487742})
TRANSIENT_CODES = frozenset({1, 2, 2650})
AUDIENCE_BLOCKED_SUBCODE = 1713230


@dataclass(frozen=True)
class MetaConfig:
    access_token: str
    audience_ids: tuple[str, ...] = ()
    ad_account_id: str | None = None  # also remove from every audience of the account
    exclusion_audience_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    batch_size: int = MAX_ROWS
    app_secret: str | None = None  # then every call carries appsecret_proof

    def __repr__(self) -> str:
        return f"MetaConfig(audience_ids={self.audience_ids!r}, base_url={self.base_url!r})"


class MetaConnector:
    name = "meta"
    kind = "meta_custom_audience"

    def __init__(self, config: MetaConfig, timeout: float = 30.0):
        if not config.audience_ids and not config.ad_account_id:
            raise ValueError("Meta needs audience ids or an ad account id")
        self.config = config
        self.batch_size = min(config.batch_size, MAX_ROWS)
        self.base_url = config.base_url.rstrip("/")
        self.http = Http("Meta", timeout)

    @property
    def targets(self) -> tuple[str, ...]:
        config = self.config
        return (
            *(f"audience:{a}" for a in config.audience_ids),
            *((f"account:{config.ad_account_id}",) if config.ad_account_id else ()),
            *(
                (f"exclusion:{config.exclusion_audience_id}",)
                if config.exclusion_audience_id
                else ()
            ),
        )

    @property
    def restores(self) -> bool:
        return self.config.exclusion_audience_id is not None

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        if not members:
            return PushResult()
        hashes = sorted({meta_email_sha256(m.email) for m in members})
        exclusion = self.config.exclusion_audience_id
        if operation == Operation.SUPPRESS:
            for audience in self.config.audience_ids:
                self._users("DELETE", f"/{audience}/users", hashes)
            if self.config.ad_account_id:
                account = self.config.ad_account_id.removeprefix("act_")
                self._users("DELETE", f"/act_{account}/usersofanyaudience", hashes)
            if exclusion:
                self._users("POST", f"/{exclusion}/users", hashes)
        elif exclusion:
            self._users("DELETE", f"/{exclusion}/users", hashes)
        return PushResult.all_confirmed(members)

    def _users(self, method: str, path: str, hashes: list[str]) -> dict[str, Any]:
        # Form fields holding JSON, as Meta's own examples send them (`-F payload=...`),
        # in the body for DELETE too: 10,000 hashes do not fit in a URL.
        form = {
            "payload": json.dumps({"schema": SCHEMA, "data": hashes}),
            "session": json.dumps(
                {
                    "session_id": secrets.randbits(62),
                    "batch_seq": 1,
                    "last_batch_flag": True,
                    "estimated_num_total": len(hashes),
                }
            ),
        }
        proof = appsecret_proof(self.config.access_token, self.config.app_secret)
        if proof:
            form["appsecret_proof"] = proof  # in the body: kept out of URLs
        headers = {"Authorization": f"Bearer {self.config.access_token}"}
        response = self.http.request(method, self.base_url + path, headers=headers, data=form)
        answer = body_json(response)
        if response.status_code != 200 or not isinstance(answer, dict) or "error" in answer:
            raise meta_error(response, answer)
        received = answer.get("num_received")
        if received is not None and int(received) == 0:
            invalid = answer.get("num_invalid_entries", 0)
            raise PermanentError(f"Meta received none of {len(hashes)} rows ({invalid} invalid)")
        return answer

    def close(self) -> None:
        self.http.close()


def appsecret_proof(access_token: str, app_secret: str | None) -> str | None:
    """HMAC-SHA256 of the access token keyed with the app secret, hex (session.py)."""
    if not app_secret:
        return None
    return hmac.new(app_secret.encode(), access_token.encode(), hashlib.sha256).hexdigest()


def meta_error(response: requests.Response, answer: Any) -> DestinationError:
    error = answer.get("error") if isinstance(answer, dict) else None
    if not isinstance(error, dict):
        status = response.status_code
        message = f"Meta: HTTP {status}"
        if status == 429:
            return RateLimited(message, retry_after_seconds(response.headers.get("Retry-After")))
        if status in (401, 403):
            return AuthError(message)
        if status >= 500 or status == 200:
            return TransientError(message)
        return PermanentError(message)
    code = _int(error.get("code"))
    subcode = _int(error.get("error_subcode"))
    text = f"Meta: error {code}" + (f"/{subcode}" if subcode else "")
    text += f": {error.get('message', '')}"
    if code in THROTTLE_CODES or subcode in THROTTLE_SUBCODES:
        return RateLimited(text, regain_access_seconds(response))
    if code in AUTH_CODES:
        return AuthError(text)
    if subcode == AUDIENCE_BLOCKED_SUBCODE:
        return PermanentError(text)
    if code in TRANSIENT_CODES or error.get("is_transient") or response.status_code >= 500:
        return TransientError(text)
    return PermanentError(text)


def regain_access_seconds(response: requests.Response) -> float | None:
    """Retry-After, else the longest `estimated_time_to_regain_access` (minutes)
    in Meta's X-Business-Use-Case-Usage header."""
    header = retry_after_seconds(response.headers.get("Retry-After"))
    if header is not None:
        return header
    raw = response.headers.get("X-Business-Use-Case-Usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
    except ValueError:
        return None
    minutes = [
        _int(entry.get("estimated_time_to_regain_access"))
        for entries in (usage.values() if isinstance(usage, dict) else [])
        if isinstance(entries, list)
        for entry in entries
        if isinstance(entry, dict)
    ]
    longest = max((m for m in minutes if m), default=0)
    return longest * 60.0 if longest else None


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0
