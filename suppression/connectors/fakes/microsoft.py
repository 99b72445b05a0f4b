"""A fake Microsoft Advertising Campaign Management v13 REST API:
CustomerListUserData/Apply, and the Microsoft identity platform token endpoint
(research §5).

Sources: MicrosoftDocs/Advertising (advertising/bingads-13/...) and
BingAds/BingAds-Python-SDK (openapi_client/models/campaign/...), named on each rule.
"""

from __future__ import annotations

import secrets
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, Fault, is_sha256_hex

MAX_ITEMS = 1_000
PATH = "/CampaignManagement/v13/CustomerListUserData/Apply"
TOKEN_PATH = "/common/oauth2/v2.0/token"
SCOPE = "https://ads.microsoft.com/msads.manage"


def wrapped(fault: dict[str, Any]) -> dict[str, Any]:
    """How the REST API answers a fault: guides/php-sdk-migration-soap-to-rest.md,
    "Error Response Structure"."""
    return {"ApplicationFault": fault}


def operation_error(code: int, error_code: str, message: str) -> dict[str, Any]:
    """An ApiFaultDetail (SDK api_fault_detail.py: OperationErrors, BatchErrors)."""
    return {
        "TrackingId": "fake-tracking-id",
        "Type": "ApiFaultDetail",
        "OperationErrors": [
            {"Code": code, "ErrorCode": error_code, "Message": message, "Details": None}
        ],
        "BatchErrors": [],
    }


def ad_api_error(code: int, error_code: str, message: str) -> dict[str, Any]:
    """An AdApiFaultDetail (SDK ad_api_fault_detail.py: Errors of ad_api_error.py)."""
    return {
        "TrackingId": "fake-tracking-id",
        "Type": "AdApiFaultDetail",
        "Errors": [{"Code": code, "ErrorCode": error_code, "Message": message, "Detail": None}],
    }


def call_rate_exceeded(bare: bool = False) -> Fault:
    """Error 117 CallRateExceeded (guides/operation-error-codes.md), wrapped in
    ApplicationFault as the REST API answers it, or `bare` (the fault alone)."""
    fault = ad_api_error(
        117, "CallRateExceeded", "You have exceeded the number of calls per minute."
    )
    return Fault(400, fault if bare else wrapped(fault))


class FakeMicrosoft(FakePlatform):
    name = "microsoft"

    def __init__(
        self,
        access_token: str = "microsoft-test-token",
        developer_token: str = "ms-dev-token",
        customer_id: str = "111",
        account_id: str = "222",
        audience_ids: tuple[str, ...] = ("9000001",),
        terms_accepted: bool = True,
        client_id: str = "ms-client-id",
        client_secret: str | None = None,
        refresh_token: str = "ms-refresh-0",
        **options: Any,
    ):
        super().__init__(**options)
        self.access_token = access_token
        self.access_tokens = {access_token}
        self.client_id = client_id
        self.client_secret = client_secret  # None: a public (desktop/mobile) client
        self.refresh_tokens = {refresh_token}
        self.token_requests: list[dict[str, str]] = []
        self.developer_token = developer_token
        self.customer_id = customer_id
        self.account_id = account_id
        self.lists: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.removed: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.terms_accepted = terms_accepted
        self.reject_hashes: set[str] = set()  # answered as PartialErrors
        self.batch_sizes: list[int] = []
        self.audience_id_types: list[str] = []  # JSON type of each AudienceId received

    @property
    def base_url(self) -> str:
        return f"{self.url}/CampaignManagement/v13"

    @property
    def token_url(self) -> str:
        return f"{self.url}{TOKEN_PATH}"

    def add_list(self, audience_id: str) -> None:
        with self.lock:
            self.lists.setdefault(audience_id, set())
            self.removed.setdefault(audience_id, set())

    def handle(self, request: Request) -> Response:
        if request.path == TOKEN_PATH and request.method == "POST":
            return self._token(request)
        if request.path != PATH or request.method != "POST":
            return self.json_response({"Message": "Not found"}, 404)
        headers = request.headers
        bearer = headers.get("Authorization", "").removeprefix("Bearer ")
        with self.lock:
            known = bearer in self.access_tokens
        # 105 InvalidCredentials, 106 UserIsNotAuthorized (guides/operation-error-codes.md)
        if not known:
            return self._auth_fail(105, "InvalidCredentials", "Authentication failed.", 401)
        if headers.get("DeveloperToken") != self.developer_token:
            return self._auth_fail(
                105, "InvalidCredentials", "The developer token is not valid.", 401
            )
        if (
            headers.get("CustomerId") != self.customer_id
            or headers.get("CustomerAccountId") != self.account_id
        ):
            return self._auth_fail(
                106, "UserIsNotAuthorized", "Not authorised for this account.", 400
            )
        body = request.get_json(silent=True)
        data = body.get("CustomerListUserData") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return self._fail(100, "NullRequest", "CustomerListUserData is required")
        audience_id = data.get("AudienceId")
        with self.lock:
            self.audience_id_types.append(type(audience_id).__name__)
        # AudienceId is a string (customerlistuserdata.md JSON template; SDK
        # customer_list_user_data.py types it StrictStr). What the service does with
        # a JSON number is not documented: the fake refuses it as 4835
        # InvalidAudienceId (guides/operation-error-codes.md).
        if not isinstance(audience_id, str):
            return self._fail(4835, "InvalidAudienceId", "The audience ID is invalid.")
        audience = audience_id
        if audience not in self.lists:
            return self._fail(8000, "InvalidCustomerListId", "Invalid CustomerList Id")
        action = data.get("ActionType")
        if action not in ("Add", "Remove", "Replace"):
            return self._fail(8001, "InvalidCustomerListActionType", "Invalid action type.")
        if data.get("CustomerListItemSubType") != "Email":
            return self._fail(8002, "CustomerListItemSubTypeNotSupported", "Only Email.")
        if not self.terms_accepted and data.get("AcceptCustomerMatchTerm") is not True:
            return self._fail(
                8003,
                "CustomerListTermsAndConditionsNotAccepted",
                "Accept the Customer Match terms.",
            )
        items = data.get("CustomerListItems")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_ITEMS:
            return self._fail(1, "InvalidRequest", f"CustomerListItems: 1 to {MAX_ITEMS} items")
        partial = []
        with self.lock:
            self.batch_sizes.append(len(items))
            for index, item in enumerate(items):
                if not is_sha256_hex(item):
                    partial.append(_partial(index, 8004, "EmailMustBeHashed"))
                elif item in self.reject_hashes:
                    partial.append(_partial(index, 8005, "CustomerListItemRejected"))
                elif action == "Remove":
                    self.lists[audience].discard(item)
                    self.removed[audience].add(item)
                else:
                    self.lists[audience].add(item)
        return self.json_response({"PartialErrors": partial})

    def _fail(self, code: int, error_code: str, message: str) -> Response:
        return self.json_response(wrapped(operation_error(code, error_code, message)), 400)

    def _auth_fail(self, code: int, error_code: str, message: str, status: int) -> Response:
        return self.json_response(wrapped(ad_api_error(code, error_code, message)), status)

    def _token(self, request: Request) -> Response:
        """The refresh-token grant of guides/authentication-oauth-get-tokens.md."""
        form = request.form.to_dict()
        with self.lock:
            self.token_requests.append({k: v for k, v in form.items() if k != "refresh_token"})
        if form.get("grant_type") != "refresh_token":
            return self.json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id:
            return self.json_response({"error": "unauthorized_client"}, 400)
        presented = form.get("client_secret")
        if self.client_secret is None and presented is not None:
            # The guide quotes this answer for a public client that sends a secret.
            return self.json_response(
                {
                    "error": "invalid_request",
                    "error_description": "Public clients can't send a client secret.",
                },
                400,
            )
        if self.client_secret is not None and presented != self.client_secret:
            # client_secret: "required for web apps" (the guide's parameter table).
            return self.json_response({"error": "invalid_client"}, 401)
        if SCOPE not in (form.get("scope") or "").split():
            return self.json_response({"error": "invalid_scope"}, 400)
        with self.lock:
            if form.get("refresh_token") not in self.refresh_tokens:
                return self.json_response({"error": "invalid_grant"}, 400)
            access = f"ms-access-{secrets.token_hex(8)}"
            refresh = f"ms-refresh-{secrets.token_hex(8)}"
            self.access_tokens.add(access)
            self.refresh_tokens.add(refresh)
        return self.json_response(
            {
                "token_type": "Bearer",
                "scope": form.get("scope"),
                "expires_in": 3600,
                "access_token": access,
                "refresh_token": refresh,
            }
        )


def _partial(index: int, code: int, error_code: str) -> dict[str, Any]:
    return {
        "Code": code,
        "ErrorCode": error_code,
        "Message": f"Item {index} was rejected ({error_code}).",
        "Index": index,
        "FieldPath": None,
        "Details": None,
        "Type": "BatchError",
    }
