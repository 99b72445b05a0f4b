"""Who may call the fake Keap, and how often: the service account key, the OAuth
token endpoint with rotating refresh tokens (research §1), and the request quotas
with Keap's headers (Keap's "API Token Quota and Usage Measurements" page: the
buckets, 429 when one is spent, the headers)."""

from __future__ import annotations

import base64
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform


def quota_violation() -> dict[str, Any]:
    """Keap's gateway 429 body (community.keap.com "Apigee migration update", Keap staff)."""
    return {
        "fault": {
            "faultstring": "Rate limit quota violation. Quota limit exceeded.",
            "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
        }
    }


class KeapAccess(FakePlatform):
    """The key, the tokens and the quotas; the fake Keap's routes build on it."""

    def __init__(
        self,
        api_key: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        throttle_per_minute: int | None,
        quota_per_day: int | None,
        **options: Any,
    ):
        super().__init__(**options)
        # Keap's quotas (quota page): a key 240 a minute and 30,000 a day, an OAuth
        # pair 1,500 and 150,000. None: not enforced and no headers (benchmarks).
        self.throttle_per_minute = throttle_per_minute
        self.quota_per_day = quota_per_day
        self.minute_started = time.monotonic()
        self.minute_used = 0
        self.day_used = 0
        self.quota_lock = threading.Lock()
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.access_tokens: set[str] = set()
        self.refreshes = 0

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def _authorised(self, request: Request) -> bool:
        key = request.headers.get("X-Keap-API-Key")
        if key is not None:
            return key == self.api_key
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            return bearer in self.access_tokens

    def _token(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if header != f"Basic {expected}":
            return self.json_response({"error": "invalid_client"}, 401)
        if request.form.get("grant_type") != "refresh_token":
            return self.json_response({"error": "unsupported_grant_type"}, 400)
        presented = request.form.get("refresh_token", "")
        with self.lock:
            if presented not in self.refresh_tokens:
                return self.json_response({"error": "invalid_grant"}, 400)
            # Rotation: the presented refresh token dies, a new one is issued.
            self.refresh_tokens.discard(presented)
            self.refreshes += 1
            refresh = f"keap-refresh-{self.refreshes}-{secrets.token_hex(4)}"
            access = f"keap-access-{secrets.token_hex(8)}"
            self.refresh_tokens.add(refresh)
            self.access_tokens.add(access)
        return self.json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 86400,
                "token_type": "bearer",
                "scope": "full",
            }
        )

    # Quotas (Keap's quota page: the buckets, 429 when spent, the headers) ---------

    def _within_quota(self) -> Response | None:
        """Count this call; a 429 with the gateway's body once a bucket is spent."""
        with self.quota_lock:
            if time.monotonic() - self.minute_started >= 60:
                self.minute_started = time.monotonic()
                self.minute_used = 0
            over_minute = self.throttle_per_minute is not None and (
                self.minute_used >= self.throttle_per_minute
            )
            over_day = self.quota_per_day is not None and self.day_used >= self.quota_per_day
            if over_minute or over_day:
                return self.json_response(quota_violation(), 429)
            self.minute_used += 1
            self.day_used += 1
        return None

    def _quota_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        with self.quota_lock:
            if self.quota_per_day is not None:
                midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                expiry = midnight + timedelta(days=1)
                headers.update(
                    {
                        "x-keap-product-quota-limit": str(self.quota_per_day),
                        "x-keap-product-quota-time-unit": "day",
                        "x-keap-product-quota-interval": "1",
                        "x-keap-product-quota-available": str(
                            max(0, self.quota_per_day - self.day_used)
                        ),
                        "x-keap-product-quota-used": str(self.day_used),
                        "x-keap-product-quota-expiry-time": str(int(expiry.timestamp() * 1000)),
                    }
                )
            if self.throttle_per_minute is not None:
                headers.update(
                    {
                        "x-keap-product-throttle-limit": str(self.throttle_per_minute),
                        "x-keap-product-throttle-time-unit": "minute",
                        "x-keap-product-throttle-interval": "1",
                        "x-keap-product-throttle-available": str(
                            max(0, self.throttle_per_minute - self.minute_used)
                        ),
                        "x-keap-product-throttle-used": str(self.minute_used),
                    }
                )
        return headers
