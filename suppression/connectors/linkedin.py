"""LinkedIn Matched Audiences: remove people from DMP segments.

`POST /rest/dmpSegments/{segmentId}/users` with `X-RestLi-Method: BATCH_CREATE`
and elements `{"action": "REMOVE", "userIds": [{"idType": "SHA256_EMAIL", ...}]}`.
The answer has one status per element, in request order, so each member is
judged on its own. It sends no Retry-After on 429.

Sources (learn.microsoft.com/linkedin/marketing): "DMP Segment Users"
(matched-audiences/create-and-manage-segment-users) documents the request and a
rate limit of 500 requests a minute per member, but no limit on elements a
call: 5,000 is our own default, not LinkedIn's. "Versioning" (versioning) says
each monthly `LinkedIn-Version` (YYYYMM) is supported for a minimum of one year
before sunset; the Migrations page lists 202603 as the latest with its sunset
on March 16, 2027.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import requests

from suppression.connectors.base import (
    Failure,
    FailureKind,
    Member,
    Operation,
    PushResult,
    TransientError,
)
from suppression.connectors.http import Http, body_json, status_error
from suppression.connectors.oauth import BearerAuth, BearerToken, TokenStore
from suppression.domain.audience_hashes import linkedin_email_sha256

DEFAULT_BASE_URL = "https://api.linkedin.com/rest"
DEFAULT_VERSION = "202603"
TOKEN_URL = "https://www.linkedin.com/oauth/v2/accessToken"
DEFAULT_BATCH = 5_000
SUPPORT_MONTHS = 12  # "supported and stable for a minimum of one year before sunset"
_VERSION = re.compile(r"(?P<year>20\d\d)(?P<month>0[1-9]|1[0-2])(?:\.\d{2})?")


@dataclass(frozen=True)
class LinkedInConfig:
    segment_ids: tuple[str, ...]
    bearer: BearerAuth = field(default_factory=BearerAuth)
    exclusion_segment_id: str | None = None
    base_url: str = DEFAULT_BASE_URL
    version: str = DEFAULT_VERSION
    batch_size: int = DEFAULT_BATCH

    def __repr__(self) -> str:
        return f"LinkedInConfig(segment_ids={self.segment_ids!r}, version={self.version!r})"


class LinkedInConnector:
    name = "linkedin"
    kind = "linkedin_dmp_segment"

    def __init__(
        self, config: LinkedInConfig, timeout: float = 30.0, token_store: TokenStore | None = None
    ):
        if not config.segment_ids:
            raise ValueError("LinkedIn needs segment ids")
        self.config = config
        self.batch_size = config.batch_size
        self.base_url = config.base_url.rstrip("/")
        self.http = Http("LinkedIn", timeout)
        self.bearer = BearerToken("LinkedIn", config.bearer, self.http, token_store)

    @property
    def targets(self) -> tuple[str, ...]:
        exclusion = self.config.exclusion_segment_id
        return (
            *(f"segment:{s}" for s in self.config.segment_ids),
            *((f"exclusion:{exclusion}",) if exclusion else ()),
        )

    @property
    def restores(self) -> bool:
        return self.config.exclusion_segment_id is not None

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        if not members:
            return PushResult()
        exclusion = self.config.exclusion_segment_id
        calls: list[tuple[str, str]] = []
        if operation == Operation.SUPPRESS:
            calls += [(segment, "REMOVE") for segment in self.config.segment_ids]
            if exclusion:
                calls.append((exclusion, "ADD"))
        elif exclusion:
            calls.append((exclusion, "REMOVE"))
        result = PushResult.all_confirmed(members)
        for segment, action in calls:
            result = result.merge(self._segment_users(segment, action, members))
        return result

    def _segment_users(self, segment: str, action: str, members: Sequence[Member]) -> PushResult:
        body = {
            "elements": [
                {
                    "action": action,
                    "userIds": [
                        {"idType": "SHA256_EMAIL", "idValue": linkedin_email_sha256(m.email)}
                    ],
                }
                for m in members
            ]
        }
        url = f"{self.base_url}/dmpSegments/{segment}/users"
        response = self._post(url, body)
        answer = body_json(response)
        elements = answer.get("elements") if isinstance(answer, dict) else None
        if not isinstance(elements, list) or len(elements) != len(members):
            raise TransientError("LinkedIn: the answer does not have one status per element")
        result = PushResult()
        for member, element in zip(members, elements, strict=True):
            failure = element_failure(element)
            if failure is None:
                result.confirmed.add(member.key)
            else:
                result.fail(member.key, failure)
        return result

    def _post(self, url: str, body: Any) -> requests.Response:
        headers = {
            "LinkedIn-Version": self.config.version,
            "X-Restli-Protocol-Version": "2.0.0",
            "X-RestLi-Method": "BATCH_CREATE",
        }
        response = self.bearer.send(
            lambda authorization: self.http.request(
                "POST", url, headers={**headers, "Authorization": authorization}, json_body=body
            )
        )
        if response.status_code not in (200, 201):
            answer = body_json(response)
            detail = str(answer.get("message", "")) if isinstance(answer, dict) else ""
            raise status_error("LinkedIn", response, detail)
        return response

    def close(self) -> None:
        self.http.close()


def version_month(version: str) -> tuple[int, int]:
    """(year, month) of a `LinkedIn-Version` such as 202603 (or a patch, 202603.01)."""
    match = _VERSION.fullmatch(version)
    if match is None:
        raise ValueError(f"{version!r} is not a LinkedIn version (YYYYMM)")
    return int(match["year"]), int(match["month"])


def version_warning(version: str, today: date) -> str | None:
    """A warning when the version is older than LinkedIn's support window: it may
    have been sunset already, and calls with it refused."""
    year, month = version_month(version)
    age = (today.year - year) * 12 + today.month - month
    if age < SUPPORT_MONTHS:
        return None
    return (
        f"LINKEDIN_VERSION {version} is {age} months old: LinkedIn supports a version "
        f"for at least {SUPPORT_MONTHS} months and then sunsets it; set a newer one"
    )


def element_failure(element: Any) -> Failure | None:
    status = element.get("status") if isinstance(element, dict) else None
    if not isinstance(status, int):
        return Failure(FailureKind.TRANSIENT, "LinkedIn: an element has no status")
    if 200 <= status < 300:
        return None
    message = f"LinkedIn: element status {status}"
    if status == 429:
        return Failure(FailureKind.RATE_LIMITED, message)
    if status in (401, 403):
        return Failure(FailureKind.AUTH, message)
    if status >= 500:
        return Failure(FailureKind.TRANSIENT, message)
    return Failure(FailureKind.PERMANENT, message)
