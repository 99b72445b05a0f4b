"""Fake destination platforms: real HTTP servers on loopback that speak each
platform's documented interface, for tests and benchmarks.

    with FakeMeta() as meta, FakeKeap() as keap:
        env = environment_for(meta=meta, keap=keap)   # META_*, KEAP_* settings
        meta.fail_next(3, status=503)                 # or start_outage(), flaky(0.1, ...)
        ...
        assert meta.removed[audience] == {...}

Each keeps what it was told (`removed`, `opted_out`, ...), logs requests
(`requests`, off with keep_requests=False for big runs) and answers faults:
`fail_next`, `start_outage`/`end_outage`, `flaky`, and platform-specific
rate-limit answers (Meta `throttle_next`, Google `resource_exhausted()`,
Microsoft `call_rate_exceeded()`, Keap's quota buckets `throttle_per_minute` and
`quota_per_day` with its quota headers, and XML-RPC faults by `xmlrpc_fault`).
"""

from __future__ import annotations

from suppression.connectors.fakes.base import FakePlatform, FakeServer, Fault
from suppression.connectors.fakes.google import FakeGoogle, resource_exhausted
from suppression.connectors.fakes.keap import FakeKeap
from suppression.connectors.fakes.linkedin import FakeLinkedIn
from suppression.connectors.fakes.meta import FakeMeta
from suppression.connectors.fakes.microsoft import FakeMicrosoft, call_rate_exceeded


def environment_for(
    keap: FakeKeap | None = None,
    meta: FakeMeta | None = None,
    google: FakeGoogle | None = None,
    linkedin: FakeLinkedIn | None = None,
    microsoft: FakeMicrosoft | None = None,
) -> dict[str, str]:
    """The destination settings that point the service at these running fakes."""
    env: dict[str, str] = {}
    if keap is not None:
        env.update(KEAP_BASE_URL=keap.base_url, KEAP_API_KEY=keap.api_key, KEAP_MAX_RPS="0")
    if meta is not None:
        env.update(
            META_BASE_URL=meta.base_url,
            META_ACCESS_TOKEN=meta.access_token,
            META_AUDIENCE_IDS=",".join(sorted(meta.audiences)),
        )
        if meta.app_secret is not None:
            env["META_APP_SECRET"] = meta.app_secret
    if google is not None:
        env.update(
            GOOGLE_BASE_URL=google.base_url,
            GOOGLE_ADS_BASE_URL=google.ads_base_url,
            GOOGLE_ACCESS_TOKEN=google.access_token,
            GOOGLE_OPERATING_ACCOUNT_ID=google.operating_account_id,
            GOOGLE_USER_LIST_IDS=",".join(sorted(google.user_lists)),
            GOOGLE_DEVELOPER_TOKEN=google.developer_token,
        )
    if linkedin is not None:
        env.update(
            LINKEDIN_BASE_URL=linkedin.base_url,
            LINKEDIN_ACCESS_TOKEN=linkedin.access_token,
            LINKEDIN_SEGMENT_IDS=",".join(sorted(linkedin.segments)),
            LINKEDIN_VERSION=linkedin.version,
        )
    if microsoft is not None:
        env.update(
            MICROSOFT_BASE_URL=microsoft.base_url,
            MICROSOFT_ACCESS_TOKEN=microsoft.access_token,
            MICROSOFT_TOKEN_URL=microsoft.token_url,
            MICROSOFT_DEVELOPER_TOKEN=microsoft.developer_token,
            MICROSOFT_CUSTOMER_ID=microsoft.customer_id,
            MICROSOFT_ACCOUNT_ID=microsoft.account_id,
            MICROSOFT_AUDIENCE_IDS=",".join(sorted(microsoft.lists)),
        )
    return env


__all__ = [
    "FakeGoogle",
    "FakeKeap",
    "FakeLinkedIn",
    "FakeMeta",
    "FakeMicrosoft",
    "FakePlatform",
    "FakeServer",
    "Fault",
    "call_rate_exceeded",
    "environment_for",
    "resource_exhausted",
]
