"""Google Customer Match: remove people from user lists.

The Data Manager API (`POST /v1/audienceMembers:remove`, up to 10,000 members
and 10 destinations a request, hashed with Data Manager's normalisation incl.
the gmail rules) is the default: the Google Ads API no longer takes new
Customer Match adopters. The Ads API path (an OfflineUserDataJob per user list:
create, addOperations with `remove`, run) is the fallback for allowlisted
developer tokens. Both answer asynchronously; an accepted request is what the
platform confirms. Removals need no consent signal.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from suppression.connectors.base import (
    AuthError,
    DestinationError,
    Failure,
    FailureKind,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    TransientError,
)
from suppression.connectors.http import Http, body_json, retry_after_seconds
from suppression.connectors.oauth import BearerAuth, BearerToken, TokenStore
from suppression.domain.audience_hashes import (
    google_ads_email_sha256,
    google_data_manager_email_sha256,
)

DEFAULT_BASE_URL = "https://datamanager.googleapis.com/v1"
DEFAULT_ADS_BASE_URL = "https://googleads.googleapis.com/v26"
TOKEN_URL = "https://oauth2.googleapis.com/token"
DATA_MANAGER_SCOPE = "https://www.googleapis.com/auth/datamanager"
ADS_SCOPE = "https://www.googleapis.com/auth/adwords"
MAX_MEMBERS = 10_000
MAX_DESTINATIONS = 10
TRANSIENT_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")


@dataclass(frozen=True)
class GoogleConfig:
    operating_account_id: str
    user_list_ids: tuple[str, ...]
    bearer: BearerAuth = field(default_factory=BearerAuth)
    login_account_id: str | None = None
    product: str = "GOOGLE_ADS"
    api: str = "data_manager"  # or "ads_api"
    base_url: str = DEFAULT_BASE_URL
    ads_base_url: str = DEFAULT_ADS_BASE_URL
    developer_token: str | None = None  # the Ads API path only
    batch_size: int = MAX_MEMBERS

    def __repr__(self) -> str:
        return f"GoogleConfig(api={self.api!r}, user_list_ids={self.user_list_ids!r})"


class GoogleConnector:
    name = "google"
    kind = "google_customer_match"
    restores = False

    def __init__(
        self, config: GoogleConfig, timeout: float = 30.0, token_store: TokenStore | None = None
    ):
        if config.api not in ("data_manager", "ads_api"):
            raise ValueError("Google api is data_manager or ads_api")
        if not config.user_list_ids:
            raise ValueError("Google needs user list ids")
        if config.api == "ads_api" and not config.developer_token:
            raise ValueError("the Google Ads API path needs a developer token")
        self.config = config
        self.batch_size = min(config.batch_size, MAX_MEMBERS)
        self.http = Http("Google", timeout)
        self.bearer = BearerToken("Google", config.bearer, self.http, token_store)

    @property
    def targets(self) -> tuple[str, ...]:
        account = _digits(self.config.operating_account_id)
        return tuple(f"user_list:{account}/{u}" for u in self.config.user_list_ids)

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        if operation != Operation.SUPPRESS or not members:
            return PushResult.all_confirmed(members)
        if self.config.api == "ads_api":
            return self._ads_api_remove(members)
        return self._data_manager_remove(members)

    # Data Manager API -------------------------------------------------------

    def _data_manager_remove(self, members: Sequence[Member]) -> PushResult:
        config = self.config
        hashes = sorted({google_data_manager_email_sha256(m.email) for m in members})
        lists = config.user_list_ids
        for start in range(0, len(lists), MAX_DESTINATIONS):
            destinations = [self._destination(u) for u in lists[start : start + MAX_DESTINATIONS]]
            body = {
                "destinations": destinations,
                "encoding": "HEX",
                "audienceMembers": [
                    {"userData": {"userIdentifiers": [{"emailAddress": h}]}} for h in hashes
                ],
            }
            url = config.base_url.rstrip("/") + "/audienceMembers:remove"
            answer = self._post(url, body, {})
            if not isinstance(answer, dict) or "requestId" not in answer:
                raise TransientError("Google: the remove request was not acknowledged")
        return PushResult.all_confirmed(members)

    def _destination(self, user_list: str) -> dict[str, Any]:
        config = self.config
        destination: dict[str, Any] = {
            "operatingAccount": {
                "product": config.product,
                "accountId": _digits(config.operating_account_id),
            },
            "productDestinationId": user_list,
        }
        if config.login_account_id:
            destination["loginAccount"] = {
                "product": config.product,
                "accountId": _digits(config.login_account_id),
            }
        return destination

    # Google Ads API (fallback) ----------------------------------------------

    def _ads_api_remove(self, members: Sequence[Member]) -> PushResult:
        config = self.config
        customer = _digits(config.operating_account_id)
        base = config.ads_base_url.rstrip("/")
        headers = {"developer-token": config.developer_token or ""}
        if config.login_account_id:
            headers["login-customer-id"] = _digits(config.login_account_id)
        by_hash: dict[str, list[int]] = {}
        for member in members:
            by_hash.setdefault(google_ads_email_sha256(member.email), []).append(member.key)
        hashes = sorted(by_hash)
        result = PushResult.all_confirmed(members)
        for user_list in config.user_list_ids:
            job = {
                "job": {
                    "type": "CUSTOMER_MATCH_USER_LIST",
                    "customerMatchUserListMetadata": {
                        "userList": f"customers/{customer}/userLists/{user_list}"
                    },
                }
            }
            created = self._post(
                f"{base}/customers/{customer}/offlineUserDataJobs:create", job, headers
            )
            resource = created.get("resourceName") if isinstance(created, dict) else None
            if not isinstance(resource, str) or "/offlineUserDataJobs/" not in resource:
                raise TransientError("Google Ads: no job resource name in the answer")
            operations = {
                "enablePartialFailure": True,
                "operations": [
                    {"remove": {"userIdentifiers": [{"hashedEmail": h}]}} for h in hashes
                ],
            }
            added = self._post(f"{base}/{resource}:addOperations", operations, headers)
            for index, message in partial_failures(added):
                if 0 <= index < len(hashes):
                    for key in by_hash[hashes[index]]:
                        result.fail(key, Failure(FailureKind.PERMANENT, f"Google Ads: {message}"))
            self._post(f"{base}/{resource}:run", {}, headers)
        return result

    # HTTP -------------------------------------------------------------------

    def _post(self, url: str, body: Any, headers: dict[str, str]) -> Any:
        response = self.bearer.send(
            lambda authorization: self.http.request(
                "POST", url, headers={**headers, "Authorization": authorization}, json_body=body
            )
        )
        answer = body_json(response)
        if response.status_code != 200:
            raise google_error(response, answer)
        return answer

    def close(self) -> None:
        self.http.close()


def google_error(response: requests.Response, answer: Any) -> DestinationError:
    """Google's error model: {"error": {"code", "message", "status", "details"}}."""
    error = answer.get("error") if isinstance(answer, dict) else None
    error = error if isinstance(error, dict) else {}
    status = str(error.get("status", ""))
    text = f"Google: HTTP {response.status_code}"
    if status:
        text += f" {status}"
    if error.get("message"):
        text += f": {error['message']}"
    code = response.status_code
    if code == 429 or status == "RESOURCE_EXHAUSTED":
        delay = retry_delay(error.get("details"))
        if delay is None:
            delay = retry_after_seconds(response.headers.get("Retry-After"))
        return RateLimited(text, delay)
    if code in (401, 403) or status in ("UNAUTHENTICATED", "PERMISSION_DENIED"):
        return AuthError(text)
    if code >= 500 or status in TRANSIENT_STATUSES:
        return TransientError(text)
    return PermanentError(text)


def retry_delay(details: Any) -> float | None:
    """The first `retryDelay` ("30s") anywhere in the error details."""
    if isinstance(details, dict):
        value = details.get("retryDelay")
        if isinstance(value, str) and (match := _DURATION.match(value)):
            return float(match.group(1))
        details = list(details.values())
    if isinstance(details, list):
        for item in details:
            found = retry_delay(item)
            if found is not None:
                return found
    return None


def partial_failures(answer: Any) -> list[tuple[int, str]]:
    """(operation index, message) from an Ads API partialFailureError."""
    failure = answer.get("partialFailureError") if isinstance(answer, dict) else None
    found: list[tuple[int, str]] = []
    if not isinstance(failure, dict):
        return found
    for detail in failure.get("details") or []:
        for error in (detail or {}).get("errors") or []:
            elements = ((error.get("location") or {}).get("fieldPathElements")) or []
            index = next(
                (e.get("index") for e in elements if e.get("fieldName") == "operations"), None
            )
            if isinstance(index, int):
                found.append((index, str(error.get("message", "rejected"))))
    return found


def _digits(account: str) -> str:
    return account.replace("-", "").strip()
