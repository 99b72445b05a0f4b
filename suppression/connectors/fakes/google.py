"""A fake Google: Data Manager API audienceMembers:remove and
requestStatus:retrieve, and the Google Ads API OfflineUserDataJob path (create,
addOperations, run, and the job's status by GoogleAdsService search)
(research §3).

Both APIs process a removal after answering, as Google does: a remove answers a
requestId (ingestion_service.proto, RemoveAudienceMembersResponse) and the
people leave the list only when the request is processed, which the status
read shows (request_status_per_destination.proto); a run job goes RUNNING and
then SUCCESS or FAILED (enums/offline_user_data_job_status.proto). Here
processing ends after `processing_reads` status reads, with the outcome queued
by `finish_next_as` (SUCCESS when none is queued)."""

from __future__ import annotations

import re
import uuid
from collections import deque
from dataclasses import dataclass, field
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
_SEARCH = re.compile(r"^/v\d+/customers/(?P<customer>\d+)/googleAds:search$")
_JOB_IDS = re.compile(
    r"FROM offline_user_data_job WHERE offline_user_data_job\.id IN \((?P<ids>[\d, ]+)\)$"
)
# ProductAccount.AccountType and the deprecated Product (destination.proto).
ACCOUNT_TYPES = frozenset(
    {
        "GOOGLE_ADS",
        "DISPLAY_VIDEO_PARTNER",
        "DISPLAY_VIDEO_ADVERTISER",
        "DATA_PARTNER",
        "GOOGLE_ANALYTICS_PROPERTY",
        "GOOGLE_AD_MANAGER_AUDIENCE_LINK",
        "FLOODLIGHT_CONFIG",
    }
)


@dataclass
class Outcome:
    """How a request ends. Data Manager: a RequestStatus (SUCCESS, FAILED,
    PARTIAL_SUCCESS) with ErrorInfo error counts per ProcessingErrorReason
    (request_status_per_destination.proto, processing_errors.proto). Ads API: a
    job status (SUCCESS, FAILED) with a failure_reason
    (enums/offline_user_data_job_failure_reason.proto)."""

    status: str = "SUCCESS"
    error_reasons: tuple[str, ...] = ()
    failure_reason: str | None = None


@dataclass
class Accepted:
    """A Data Manager remove request Google has taken but not processed yet."""

    lists: list[str]
    hashes: list[str]
    destinations: list[Any]
    outcome: Outcome
    reads: int = 0
    status: str = "PROCESSING"
    errors: list[dict[str, Any]] = field(default_factory=list)


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
        self.accepted: dict[str, Accepted] = {}  # Data Manager request id -> request
        self.processing_reads = 1  # status reads that answer PROCESSING / RUNNING first
        self.outcomes: deque[Outcome] = deque()

    def finish_next_as(self, outcome: Outcome, count: int = 1) -> None:
        """The next `count` accepted requests (or run jobs) end this way."""
        with self.lock:
            self.outcomes.extend([outcome] * count)

    def _next_outcome(self) -> Outcome:
        return self.outcomes.popleft() if self.outcomes else Outcome()

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def ads_base_url(self) -> str:
        return f"{self.url}/v26"

    def handle(self, request: Request) -> Response:
        # RetrieveRequestStatus is a GET (ingestion_service.proto, google.api.http).
        retrieve = request.method == "GET" and request.path == "/v1/requestStatus:retrieve"
        if request.method != "POST" and not retrieve:
            return self.json_response(google_error(404, "NOT_FOUND", "No such method"), 404)
        if request.headers.get("Authorization") != f"Bearer {self.access_token}":
            return self.json_response(
                google_error(
                    401, "UNAUTHENTICATED", "Request had invalid authentication credentials."
                ),
                401,
            )
        if retrieve:
            return self._retrieve(request.args.get("requestId", ""))
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
        if (match := _SEARCH.match(request.path)) is not None:
            return self._search(match.group("customer"), body)
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
            if account.get("accountId") != self.operating_account_id:
                return self._invalid("operatingAccount is not accessible")
            # destination.proto, ProductAccount: `account_type` or the deprecated
            # `product` is required; when both are set they must match.
            kinds = {account.get("accountType"), account.get("product")} - {None}
            if len(kinds) != 1 or not kinds <= ACCOUNT_TYPES:
                return self._invalid("operatingAccount needs one accountType")
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
        request_id = str(uuid.uuid4())
        with self.lock:
            self.batch_sizes.append(len(members))
            # Processed later: the lists change when the status read finishes it.
            self.accepted[request_id] = Accepted(lists, hashes, destinations, self._next_outcome())
        return self.json_response({"requestId": request_id})

    def _retrieve(self, request_id: str) -> Response:
        """RetrieveRequestStatusResponse: one RequestStatusPerDestination per
        destination of the original request, in its order
        (ingestion_service.proto; request_status_per_destination.proto)."""
        with self.lock:
            accepted = self.accepted.get(request_id)
            if accepted is None:
                # error.proto INVALID_REQUEST_ID: only accepted, non-validate-only
                # requests have a status.
                detail = {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "INVALID_REQUEST_ID",
                    "domain": "datamanager.googleapis.com",
                }
                return self.json_response(
                    google_error(400, "INVALID_ARGUMENT", "Invalid request ID.", [detail]), 400
                )
            accepted.reads += 1
            if accepted.status == "PROCESSING" and accepted.reads > self.processing_reads:
                self._finish(accepted)
            statuses = []
            for destination in accepted.destinations:
                status: dict[str, Any] = {
                    "destination": destination,
                    "requestStatus": accepted.status,
                    "audienceMembersRemovalStatus": {
                        "userDataRemovalStatus": {
                            "recordCount": str(len(accepted.hashes)),
                            "userIdentifierCount": str(len(accepted.hashes)),
                        }
                    },
                }
                if accepted.errors:
                    status["errorInfo"] = {"errorCounts": accepted.errors}
                statuses.append(status)
        return self.json_response({"requestStatusPerDestination": statuses})

    def _finish(self, accepted: Accepted) -> None:
        outcome = accepted.outcome
        accepted.status = outcome.status
        accepted.errors = [
            {"recordCount": str(len(accepted.hashes)), "reason": reason}
            for reason in outcome.error_reasons
        ]
        if outcome.status == "SUCCESS":
            for user_list in accepted.lists:
                self.removed[user_list].update(accepted.hashes)

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
            self.jobs[job_id] = {
                "list": match.group("list"),
                "removes": [],
                "status": "PENDING",
                "reads": 0,
                "outcome": None,
            }
        return self.json_response(
            {"resourceName": f"customers/{customer}/offlineUserDataJobs/{job_id}"}
        )

    def _job_action(self, job_id: str, action: str, body: Any) -> Response:
        with self.lock:
            job = self.jobs.get(job_id)
            if job is None:
                return self.json_response(google_error(404, "NOT_FOUND", "No such job"), 404)
            if job["status"] != "PENDING":
                # A job takes operations and runs only while PENDING (the status
                # enum: "created and pending for uploading").
                return self._invalid("The job is not PENDING")
            if action == "run":
                job["status"] = "RUNNING"  # processed later, see _search
                job["outcome"] = self._next_outcome()
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

    def _search(self, customer: str, body: Any) -> Response:
        """GoogleAdsService search for the jobs' status, the query of
        google-ads-python examples/remarketing/add_customer_match_user_list.py
        (`check_job_status`) by id; results carry `offlineUserDataJob`."""
        query = " ".join(str((body or {}).get("query", "")).split())
        match = _JOB_IDS.search(query)
        if customer != self.operating_account_id or match is None:
            return self._invalid("The fake answers offline_user_data_job queries by id only")
        results = []
        with self.lock:
            for job_id in (j.strip() for j in match.group("ids").split(",")):
                job = self.jobs.get(job_id)
                if job is None:
                    continue
                if job["status"] == "RUNNING":
                    job["reads"] += 1
                    if job["reads"] > self.processing_reads:
                        self._finish_job(job)
                found: dict[str, Any] = {
                    "resourceName": f"customers/{customer}/offlineUserDataJobs/{job_id}",
                    "id": job_id,
                    "status": job["status"],
                }
                if job["status"] == "FAILED":
                    found["failureReason"] = job["outcome"].failure_reason or "UNKNOWN"
                results.append({"offlineUserDataJob": found})
        return self.json_response({"results": results})

    def _finish_job(self, job: dict[str, Any]) -> None:
        outcome = job["outcome"]
        job["status"] = "SUCCESS" if outcome.status == "SUCCESS" else "FAILED"
        if job["status"] == "SUCCESS":
            self.removed[job["list"]].update(job["removes"])
