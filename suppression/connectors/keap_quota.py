"""Keap's request quotas: how fast to call, and what its quota headers say.

Figures from Keap's developer portal, "API Token Quota and Usage Measurements"
(developer.infusionsoft.com/api-token-quota-and-usage-measurements; also
developer.infusionsoft.com/?p=2637 "Throttles and Quotas"):

- a service account key or personal access token: 240 requests a minute and
  30,000 a day (and 10 a second);
- an OAuth client key/secret pair: 1,500 a minute and 150,000 a day, across every
  Keap application it reaches;
- the daily quotas reset at 00:00 UTC; a per-second spike policy (25 calls) sends
  no headers.

The same page names the headers on every REST response: `x-keap-product-quota-`
{limit, time-unit, interval, available, used, expiry-time} for the daily bucket and
`x-keap-product-throttle-`{limit, time-unit, interval, available, used} for the
per-minute one. It gives `expiry-time` as an integer "timecode" without a unit;
answers seen in the wild carry epoch milliseconds, so both milliseconds and
seconds are accepted. Whether the XML-RPC endpoint sends these headers the page
does not say: they are read wherever they appear, and every value is parsed
defensively (a missing or malformed header is simply not known).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from suppression.connectors.base import RateLimited

KEY_PER_MINUTE = 240
KEY_PER_DAY = 30_000
OAUTH_PER_MINUTE = 1_500
OAUTH_PER_DAY = 150_000

_UNIT_SECONDS = {"second": 1.0, "minute": 60.0, "hour": 3600.0, "day": 86400.0}
_MILLISECONDS = 10**11  # a timecode above this is in milliseconds (after 1973)


def default_requests_per_second(api_key: bool) -> float:
    """Pace at the per-minute quota of the credential kind, spread evenly: a key's
    240 a minute is 4 a second; an OAuth pair's 1,500 a minute is 25 a second."""
    return (KEY_PER_MINUTE if api_key else OAUTH_PER_MINUTE) / 60.0


@dataclass(frozen=True)
class QuotaReading:
    """What one answer's headers said; None where a header was absent or unreadable."""

    throttle_available: int | None = None
    throttle_window_seconds: float | None = None
    quota_limit: int | None = None
    quota_available: int | None = None
    quota_expires_at: float | None = None  # epoch seconds

    def exhausted(self, now: float) -> RateLimited | None:
        """The wait the headers call for once a bucket is empty, else None."""
        if self.quota_available is not None and self.quota_available <= 0:
            resumes = self.quota_resumes_at(now)
            limit = f" of {self.quota_limit}" if self.quota_limit else ""
            stamp = datetime.fromtimestamp(resumes, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return RateLimited(
                f"Keap: the daily request quota{limit} is spent; sending resumes at {stamp}",
                retry_after=max(1.0, resumes - now),
            )
        if self.throttle_available is not None and self.throttle_available <= 0:
            window = self.throttle_window_seconds or _UNIT_SECONDS["minute"]
            return RateLimited("Keap: the per-minute request throttle is spent", retry_after=window)
        return None

    def quota_resumes_at(self, now: float) -> float:
        """When the daily bucket refills: its expiry time when given and ahead,
        else the next 00:00 UTC (when Keap resets daily quotas)."""
        if self.quota_expires_at is not None and self.quota_expires_at > now:
            return self.quota_expires_at
        today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        return (today + timedelta(days=1)).timestamp()


def read_quota_headers(headers: Mapping[str, str]) -> QuotaReading:
    """The quota headers of one answer (names as on Keap's quota page)."""
    lowered = {key.lower(): value for key, value in headers.items()}

    def number(name: str) -> int | None:
        raw = lowered.get(name, "").split("|")[0].strip()
        try:
            return int(raw)
        except ValueError:
            return None

    window = None
    unit = lowered.get("x-keap-product-throttle-time-unit", "").split("|")[0].strip().lower()
    if unit in _UNIT_SECONDS:
        window = _UNIT_SECONDS[unit] * max(1, number("x-keap-product-throttle-interval") or 1)
    expiry = number("x-keap-product-quota-expiry-time")
    expires_at = None
    if expiry is not None and expiry > 0:
        expires_at = expiry / 1000.0 if expiry > _MILLISECONDS else float(expiry)
    return QuotaReading(
        throttle_available=number("x-keap-product-throttle-available"),
        throttle_window_seconds=window,
        quota_limit=number("x-keap-product-quota-limit"),
        quota_available=number("x-keap-product-quota-available"),
        quota_expires_at=expires_at,
    )
