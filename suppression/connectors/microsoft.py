"""Microsoft Advertising Customer Match: remove people from customer lists.

`POST /CampaignManagement/v13/CustomerListUserData/Apply` with ActionType
`Remove`, at most 1,000 SHA-256 hashes (lower-case hex) a call. The answer's
`PartialErrors` name failing items by `Index`; the rest were applied. Error
117 CallRateExceeded means: wait 60 seconds and send again.

Sources (MicrosoftDocs/Advertising, BingAds/BingAds-Python-SDK): `AudienceId` is
a string (customerlistuserdata.md JSON template; SDK
openapi_client/models/campaign/customer_list_user_data.py). A failed call answers
a fault either bare or wrapped in `{"ApplicationFault": {...}}`
(guides/php-sdk-migration-soap-to-rest.md), the fault being an `AdApiFaultDetail`
with `Errors` or an `ApiFaultDetail` with `OperationErrors` and `BatchErrors`
(SDK application_fault.py, ad_api_fault_detail.py, api_fault_detail.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from suppression.connectors.base import (
    AuthError,
    DestinationError,
    Failure,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    TransientError,
)
from suppression.connectors.http import Http, body_json, retry_after_seconds
from suppression.connectors.oauth import BearerAuth, BearerToken, TokenStore
from suppression.domain.audience_hashes import microsoft_email_sha256

DEFAULT_BASE_URL = "https://campaign.api.bingads.microsoft.com/CampaignManagement/v13"
TOKEN_URL = "https://login.microsoftonline.com/common/oauth2/v2.0/token"
SCOPE = "https://ads.microsoft.com/msads.manage offline_access"
MAX_ITEMS = 1_000
CALL_RATE_EXCEEDED = 117
CALL_RATE_WAIT_SECONDS = 60.0
# InvalidCredentials, UserIsNotAuthorized, UserCompromised, AuthenticationTokenExpired
# (guides/operation-error-codes.md): the operator must act, whatever the HTTP status.
AUTH_CODES = frozenset({105, 106, 108, 109})
ERROR_LISTS = ("Errors", "OperationErrors", "BatchErrors", "PartialErrors")


@dataclass(frozen=True)
class MicrosoftConfig:
    developer_token: str
    customer_id: str
    account_id: str
    audience_ids: tuple[str, ...]
    bearer: BearerAuth = field(default_factory=BearerAuth)
    exclusion_audience_id: str | None = None
    accept_customer_match_terms: bool = False
    base_url: str = DEFAULT_BASE_URL
    batch_size: int = MAX_ITEMS

    def __repr__(self) -> str:
        return f"MicrosoftConfig(audience_ids={self.audience_ids!r}, base_url={self.base_url!r})"


class MicrosoftConnector:
    name = "microsoft"
    kind = "microsoft_customer_list"

    def __init__(
        self, config: MicrosoftConfig, timeout: float = 30.0, token_store: TokenStore | None = None
    ):
        if not config.audience_ids:
            raise ValueError("Microsoft needs customer list (audience) ids")
        self.config = config
        self.batch_size = min(config.batch_size, MAX_ITEMS)
        self.http = Http("Microsoft", timeout)
        self.bearer = BearerToken("Microsoft", config.bearer, self.http, token_store)

    @property
    def targets(self) -> tuple[str, ...]:
        exclusion = self.config.exclusion_audience_id
        return (
            *(f"customer_list:{a}" for a in self.config.audience_ids),
            *((f"exclusion:{exclusion}",) if exclusion else ()),
        )

    @property
    def restores(self) -> bool:
        return self.config.exclusion_audience_id is not None

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        if not members:
            return PushResult()
        exclusion = self.config.exclusion_audience_id
        calls: list[tuple[str, str]] = []
        if operation == Operation.SUPPRESS:
            calls += [(audience, "Remove") for audience in self.config.audience_ids]
            if exclusion:
                calls.append((exclusion, "Add"))
        elif exclusion:
            calls.append((exclusion, "Remove"))
        result = PushResult.all_confirmed(members)
        for audience, action in calls:
            result = result.merge(self._apply(audience, action, members))
        return result

    def _apply(self, audience: str, action: str, members: Sequence[Member]) -> PushResult:
        hashes = [microsoft_email_sha256(m.email) for m in members]
        data: dict[str, Any] = {
            "AudienceId": audience,  # a string in the reference and the SDK
            "ActionType": action,
            "CustomerListItemSubType": "Email",
            "CustomerListItems": hashes,
        }
        if self.config.accept_customer_match_terms:
            data["AcceptCustomerMatchTerm"] = True
        answer = self._post({"CustomerListUserData": data})
        result = PushResult.all_confirmed(members)
        for error in (answer.get("PartialErrors") or []) if isinstance(answer, dict) else []:
            index = error.get("Index") if isinstance(error, dict) else None
            if isinstance(index, int) and 0 <= index < len(members):
                result.fail(members[index].key, item_failure(error))
            else:  # an error not tied to an item: the whole call failed
                raise microsoft_error_from(error, None)
        return result

    def _post(self, body: Any) -> Any:
        config = self.config
        url = config.base_url.rstrip("/") + "/CustomerListUserData/Apply"
        headers = {
            "DeveloperToken": config.developer_token,
            "CustomerId": config.customer_id,
            "CustomerAccountId": config.account_id,
        }
        response = self.bearer.send(
            lambda authorization: self.http.request(
                "POST", url, headers={**headers, "Authorization": authorization}, json_body=body
            )
        )
        answer = body_json(response)
        if response.status_code != 200:
            raise microsoft_error(response, answer)
        return answer

    def close(self) -> None:
        self.http.close()


def _errors(answer: Any) -> list[dict[str, Any]]:
    """Every error of a fault, bare or wrapped in ApplicationFault."""
    if not isinstance(answer, dict):
        return []
    wrapped = answer.get("ApplicationFault")
    if isinstance(wrapped, dict):
        answer = wrapped
    found = [answer] if "Code" in answer or "ErrorCode" in answer else []
    for key in ERROR_LISTS:
        listed = answer.get(key)
        found += [e for e in listed if isinstance(e, dict)] if isinstance(listed, list) else []
    return found


def _code(error: dict[str, Any]) -> int:
    try:
        return int(error.get("Code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def microsoft_error_from(
    error: dict[str, Any], response: requests.Response | None
) -> DestinationError:
    code = _code(error)
    text = f"Microsoft: error {code} {error.get('ErrorCode', '')}: {error.get('Message', '')}"
    if code == CALL_RATE_EXCEEDED:
        header = retry_after_seconds(response.headers.get("Retry-After")) if response else None
        return RateLimited(text, header or CALL_RATE_WAIT_SECONDS)
    if code in AUTH_CODES:
        return AuthError(text)
    if response is not None and response.status_code >= 500:
        return TransientError(text)
    return PermanentError(text)


def microsoft_error(response: requests.Response, answer: Any) -> DestinationError:
    errors = _errors(answer)
    if errors:
        # A rate limit only asks for a wait; refused credentials need the operator.
        rate = next((e for e in errors if _code(e) == CALL_RATE_EXCEEDED), None)
        auth = next((e for e in errors if _code(e) in AUTH_CODES), None)
        return microsoft_error_from(rate or auth or errors[0], response)
    status = response.status_code
    text = f"Microsoft: HTTP {status}"
    if status == 429:
        header = retry_after_seconds(response.headers.get("Retry-After"))
        return RateLimited(text, header or CALL_RATE_WAIT_SECONDS)
    if status in (401, 403):
        return AuthError(text)
    if status >= 500:
        return TransientError(text)
    return PermanentError(text)


def item_failure(error: dict[str, Any]) -> Failure:
    """One item's PartialError: rate limit, auth, or (mostly) permanent."""
    return microsoft_error_from(error, None).failure()
