"""A fake Google: Data Manager API audienceMembers:remove, and the Google Ads
API OfflineUserDataJob path (create, addOperations, run) (research §3)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, Fault, is_sha256_hex

MAX_MEMBERS = 10_000
MAX_DESTINATIONS = 10
_JOB_CREATE = re.compile(r"^/v\d+/customers/(?P<customer>\d+)/offlineUserDataJobs:create$")
_JOB_ACTION = re.compile(
    r"^/v\d+/customers/(?P<customer>\d+)/offlineUserDataJobs/(?P<job>\d+):(?P<action>addOperations|run)$"
)
_USER_LIST = re.compile(r"^customers/(?P<customer>\d+)/userLists/(?P<list>\d+)$")


def google_error(
    code: int, status: str, message: str, details: list[Any] | None = None
) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "status": status, "details": details or []}}


def resource_exhausted(retry_seconds: int = 30) -> Fault:
    """429 RESOURCE_EXHAUSTED with a RetryInfo detail, as Google answers it."""
    detail = {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": f"{retry_seconds}s",
    }
    return Fault(429, google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.", [detail]))


class FakeGoogle(FakePlatform):
    name = "google"

    def __init__(
        self,
        access_token: str = "google-test-token",
        operating_account_id: str = "1234567890",
        user_list_ids: tuple[str, ...] = ("5550001",),
        developer_token: str = "google-dev-token",
        **options: Any,
    ):
        super().__init__(**options)
        self.access_token = access_token
        self.operating_account_id = operating_account_id
        self.user_lists: set[str] = set(user_list_ids)
        self.developer_token = developer_token
        self.removed: dict[str, set[str]] = {u: set() for u in user_list_ids}
        self.batch_sizes: list[int] = []
        self.jobs: dict[str, dict[str, Any]] = {}
        self.reject_hashes: set[str] = set()  # the Ads API answers a partial failure for these

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def ads_base_url(self) -> str:
        return f"{self.url}/v26"

    def handle(self, request: Request) -> Response:
        if request.method != "POST":
            return self.json_response(google_error(404, "NOT_FOUND", "No such method"), 404)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self.json_response(
                google_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                ),
                401,
            )
        body = request.get_json(silent=True)
        if request.path == "/v1/audienceMembers:remove":
            return self._remove(body)
        if request.headers.get("developer-token") != self.developer_token:
            return self.json_response(
                google_error(401, "UNAUTHENTICATED", "The developer token is not valid."), 401
            )
        if (match := _JOB_CREATE.match(request.path)) is not None:
            return self._create_job(match.group("customer"), body)
        if (match := _JOB_ACTION.match(request.path)) is not None:
            return self._job_action(match.group("job"), match.group("action"), body)
        return self.json_response(google_error(404, "NOT_FOUND", "No such method"), 404)

    def _invalid(self, message: str) -> Response:
        return self.json_response(google_error(400, "INVALID_ARGUMENT", message), 400)

    def _remove(self, body: Any) -> Response:
        if not isinstance(body, dict):
            return self._invalid("The request body must be JSON.")
        destinations = body.get("destinations")
        if not isinstance(destinations, list) or not 1 <= len(destinations) <= MAX_DESTINATIONS:
            return self._invalid(f"destinations: between 1 and {MAX_DESTINATIONS}")
        lists = []
        for destination in destinations:
            account = (destination or {}).get("operatingAccount") or {}
            if account.get("accountId") != self.operating_account_id or not account.get("product"):
                return self._invalid("operatingAccount is not accessible")
            if destination.get("productDestinationId") not in self.user_lists:
                return self._invalid("productDestinationId is not a user list of the account")
            lists.append(destination["productDestinationId"])
        if body.get("encoding") != "HEX":
            return self._invalid("encoding must be HEX for hex-encoded hashes")
        members = body.get("audienceMembers")
        if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
            return self._invalid(f"audienceMembers: between 1 and {MAX_MEMBERS}")
        hashes = []
        for member in members:
            identifiers = ((member or {}).get("userData") or {}).get("userIdentifiers") or []
            if not identifiers or not all(
                is_sha256_hex(i.get("emailAddress")) for i in identifiers
            ):
                return self._invalid("userIdentifiers.emailAddress must be SHA-256 hex")
            hashes += [i["emailAddress"] for i in identifiers]
        with self.lock:
            self.batch_sizes.append(len(members))
            for user_list in lists:
                self.removed[user_list].update(hashes)
        return self.json_response({"requestId": str(uuid.uuid4())})

    def _create_job(self, customer: str, body: Any) -> Response:
        job = (body or {}).get("job") or {}
        user_list = (job.get("customerMatchUserListMetadata") or {}).get("userList", "")
        match = _USER_LIST.match(user_list)
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST" or match is None:
            return self._invalid("job must be a CUSTOMER_MATCH_USER_LIST job with a userList")
        if customer != self.operating_account_id or match.group("list") not in self.user_lists:
            return self._invalid("userList is not accessible")
        with self.lock:
            job_id = str(len(self.jobs) + 1)
            self.jobs[job_id] = {"list": match.group("list"), "removes": [], "status": "PENDING"}
        return self.json_response(
            {"resourceName": f"customers/{customer}/offlineUserDataJobs/{job_id}"}
        )

    def _job_action(self, job_id: str, action: str, body: Any) -> Response:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return self.json_response(google_error(404, "NOT_FOUND", "No such job"), 404)
            if action == "run":
                job["status"] = "RUNNING"
                self.removed[job["list"]].update(job["removes"])
                return self.json_response({"name": f"operations/{job_id}"})
            operations = (body or {}).get("operations") or []
            if len(operations) > MAX_MEMBERS * 10:
                return self._invalid("TOO_MANY_USER_IDENTIFIERS")
            errors = []
            for index, operation in enumerate(operations):
                identifiers = (operation.get("remove") or {}).get("userIdentifiers") or []
                hashed = [i.get("hashedEmail") for i in identifiers]
                if not hashed or not all(is_sha256_hex(h) for h in hashed):
                    return self._invalid("remove operations need hashedEmail identifiers")
                if any(h in self.reject_hashes for h in hashed):
                    errors.append(
                        {
                            "errorCode": {"offlineUserDataJobError": "INVALID_SHA256_FORMAT"},
                            "message": "The identifier was rejected.",
                            "location": {
                                "fieldPathElements": [{"fieldName": "operations", "index": index}]
                            },
                        }
                    )
                    continue
                job["removes"] += hashed
            self.batch_sizes.append(len(operations))
        answer: dict[str, Any] = {}
        if errors and (body or {}).get("enablePartialFailure"):
            answer["partialFailureError"] = {
                "code": 3,
                "message": "Some operations failed.",
                "details": [{"@type": "GoogleAdsFailure", "errors": errors}],
            }
        return self.json_response(answer)
