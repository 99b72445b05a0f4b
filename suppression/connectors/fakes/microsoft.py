"""A fake Microsoft Advertising Campaign Management v13 REST API:
CustomerListUserData/Apply (research §5)."""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, Fault, is_sha256_hex

MAX_ITEMS = 1_000
PATH = "/CampaignManagement/v13/CustomerListUserData/Apply"


def operation_error(code: int, error_code: str, message: str) -> dict[str, Any]:
    return {
        "TrackingId": "fake-tracking-id",
        "Type": "ApiFaultDetail",
        "OperationErrors": [
            {"Code": code, "ErrorCode": error_code, "Message": message, "Details": None}
        ],
        "BatchErrors": [],
    }


def call_rate_exceeded() -> Fault:
    return Fault(
        400,
        operation_error(
            117, "CallRateExceeded", "You have exceeded the number of calls per minute."
        ),
    )


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
        **options: Any,
    ):
        super().__init__(**options)
        self.access_token = access_token
        self.developer_token = developer_token
        self.customer_id = customer_id
        self.account_id = account_id
        self.lists: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.removed: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.terms_accepted = terms_accepted
        self.reject_hashes: set[str] = set()  # answered as PartialErrors
        self.batch_sizes: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/CampaignManagement/v13"

    def add_list(self, audience_id: str) -> None:
        with self.lock:
            self.lists.setdefault(audience_id, set())
            self.removed.setdefault(audience_id, set())

    def handle(self, request: Request) -> Response:
        if request.path != PATH or request.method != "POST":
            return self.json_response({"Message": "Not found"}, 404)
        headers = request.headers
        if headers.get("Authorization") != f"Bearer {self.access_token}":
            return self.json_response(
                operation_error(105, "InvalidCredentials", "Authentication failed."), 401
            )
        if headers.get("DeveloperToken") != self.developer_token:
            return self.json_response(
                operation_error(105, "InvalidCredentials", "The developer token is not valid."), 401
            )
        if (
            headers.get("CustomerId") != self.customer_id
            or headers.get("CustomerAccountId") != self.account_id
        ):
            return self.json_response(
                operation_error(106, "UserIsNotAuthorized", "Not authorised for this account."), 400
            )
        body = request.get_json(silent=True)
        data = body.get("CustomerListUserData") if isinstance(body, dict) else None
        if not isinstance(data, dict):
            return self._fail(1, "InvalidRequest", "CustomerListUserData is required")
        audience = str(data.get("AudienceId"))
        if not isinstance(data.get("AudienceId"), int) or audience not in self.lists:
            return self._fail(8000, "InvalidCustomerListId", "The customer list id is invalid.")
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
        return self.json_response(operation_error(code, error_code, message), 400)


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
