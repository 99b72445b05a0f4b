"""Google Customer Match: remove people from user lists.

The Data Manager API (`POST /v1/audienceMembers:remove`, up to 10,000 members
and 10 destinations a request, hashed with Data Manager's normalisation incl.
the gmail rules) is the default: the Google Ads API no longer takes new
Customer Match adopters. The Ads API path (an OfflineUserDataJob per user list:
create, addOperations with `remove`, run) is the fallback for allowlisted
developer tokens. Removals need no consent signal.

Both process a removal after answering: an accepted remove is not yet a removal.
`push` answers its members as accepted with a request id, and `request_status`
reads the outcome later: `requestStatus:retrieve` for Data Manager
(ingestion_service.proto, request_status_per_destination.proto), the job's
status through GoogleAdsService search for the Ads API
(offline_user_data_job.proto; google-ads-python
examples/remarketing/add_customer_match_user_list.py, `check_job_status`).
The Ads API path keeps one job per user list for a whole pass (Google advises
few large jobs) and runs them in `end_pass`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from suppression.connectors.base import (
    DestinationError,
    Failure,
    FailureKind,
    Member,
    Operation,
    PushResult,
    RequestState,
    RequestStatus,
    TransientError,
)
from suppression.connectors.google_answers import (
    data_manager_status,
    google_error,
    job_failure,
    job_id,
    jobs_found,
    partial_failures,
)
from suppression.connectors.http import Http, body_json
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
# Request ids we hand out: which API, then the platform's ids, comma-separated.
DATA_MANAGER_PREFIX = "datamanager:"
ADS_PREFIX = "ads:"


@dataclass(frozen=True)
class GoogleConfig:
    operating_account_id: str
    user_list_ids: tuple[str, ...]
    bearer: BearerAuth = field(default_factory=BearerAuth)
    login_account_id: str | None = None
    account_type: str = "GOOGLE_ADS"  # ProductAccount.account_type (destination.proto)
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
        # Ads API: the job each user list collects removals in during this pass.
        self._open_jobs: dict[str, str] = {}

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
        request_ids = []
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
            request_id = answer.get("requestId") if isinstance(answer, dict) else None
            if not isinstance(request_id, str) or not request_id or "," in request_id:
                raise TransientError("Google: the remove request was not acknowledged")
            request_ids.append(request_id)
        accepted = DATA_MANAGER_PREFIX + ",".join(request_ids)
        return PushResult(accepted={m.key: accepted for m in members})

    def _destination(self, user_list: str) -> dict[str, Any]:
        config = self.config
        # `product` is deprecated in favour of `accountType` (destination.proto,
        # ProductAccount): only `accountType` is sent.
        destination: dict[str, Any] = {
            "operatingAccount": {
                "accountType": config.account_type,
                "accountId": _digits(config.operating_account_id),
            },
            "productDestinationId": user_list,
        }
        if config.login_account_id:
            destination["loginAccount"] = {
                "accountType": config.account_type,
                "accountId": _digits(config.login_account_id),
            }
        return destination

    def _data_manager_status(self, request_ids: Sequence[str]) -> RequestStatus:
        """GET /v1/requestStatus:retrieve?requestId=... per request
        (google_answers.data_manager_status reads each answer)."""
        url = self.config.base_url.rstrip("/") + "/requestStatus:retrieve"
        processing = False
        for request_id in request_ids:
            query = urlencode({"requestId": request_id})
            status = data_manager_status(self._send("GET", f"{url}?{query}", None, {}))
            if status.state == RequestState.FAILED:
                return status
            processing = processing or status.state == RequestState.PROCESSING
        return RequestStatus.processing() if processing else RequestStatus.succeeded()

    # Following a request ------------------------------------------------------

    def request_status(self, request_id: str) -> RequestStatus:
        if request_id.startswith(DATA_MANAGER_PREFIX) and self.config.api == "data_manager":
            return self._data_manager_status(request_id[len(DATA_MANAGER_PREFIX) :].split(","))
        if request_id.startswith(ADS_PREFIX) and self.config.api == "ads_api":
            return self._ads_job_status(request_id[len(ADS_PREFIX) :].split(","))
        # Accepted by the other API (GOOGLE_API changed since): push again.
        return RequestStatus.failed(
            Failure(FailureKind.TRANSIENT, "Google: the request was made with the other API")
        )

    def end_pass(self) -> None:
        """Ads API: run the jobs this pass collected removals in (one per user list)."""
        jobs, self._open_jobs = list(self._open_jobs.values()), {}
        first_error: DestinationError | None = None
        for resource in jobs:
            try:
                self._run_job(resource)
            except DestinationError as exc:  # the next status read runs it again
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    # Google Ads API (fallback) ----------------------------------------------

    def _ads_headers(self) -> dict[str, str]:
        config = self.config
        headers = {"developer-token": config.developer_token or ""}
        if config.login_account_id:
            headers["login-customer-id"] = _digits(config.login_account_id)
        return headers

    def _ads_base(self) -> str:
        return self.config.ads_base_url.rstrip("/")

    def _ads_api_remove(self, members: Sequence[Member]) -> PushResult:
        """Add remove operations to this pass's job of each user list (created on
        first use): the jobs run at the end of the pass, not per batch."""
        by_hash: dict[str, list[int]] = {}
        for member in members:
            by_hash.setdefault(google_ads_email_sha256(member.email), []).append(member.key)
        hashes = sorted(by_hash)
        result = PushResult()
        jobs = []
        for user_list in self.config.user_list_ids:
            resource = self._job_of(user_list)
            jobs.append(resource)
            operations = {
                "enablePartialFailure": True,
                "operations": [
                    {"remove": {"userIdentifiers": [{"hashedEmail": h}]}} for h in hashes
                ],
            }
            added = self._post(
                f"{self._ads_base()}/{resource}:addOperations", operations, self._ads_headers()
            )
            for index, message in partial_failures(added):
                if 0 <= index < len(hashes):
                    for key in by_hash[hashes[index]]:
                        result.fail(key, Failure(FailureKind.PERMANENT, f"Google Ads: {message}"))
        # _job_of returns only resource names that hold a job id.
        accepted = ADS_PREFIX + ",".join(j for j in map(job_id, jobs) if j is not None)
        for member in members:
            if member.key not in result.failures:
                result.accepted[member.key] = accepted
        return result

    def _job_of(self, user_list: str) -> str:
        resource = self._open_jobs.get(user_list)
        if resource is not None:
            return resource
        customer = _digits(self.config.operating_account_id)
        job = {
            "job": {
                "type": "CUSTOMER_MATCH_USER_LIST",
                "customerMatchUserListMetadata": {
                    "userList": f"customers/{customer}/userLists/{user_list}"
                },
            }
        }
        created = self._post(
            f"{self._ads_base()}/customers/{customer}/offlineUserDataJobs:create",
            job,
            self._ads_headers(),
        )
        resource = created.get("resourceName") if isinstance(created, dict) else None
        if not isinstance(resource, str) or job_id(resource) is None:
            raise TransientError("Google Ads: no job resource name in the answer")
        self._open_jobs[user_list] = resource
        return resource

    def _run_job(self, resource: str) -> None:
        self._post(f"{self._ads_base()}/{resource}:run", {}, self._ads_headers())

    def _ads_job_status(self, job_ids: Sequence[str]) -> RequestStatus:
        """The jobs' status by GoogleAdsService search (offline_user_data_job.proto:
        PENDING, RUNNING, SUCCESS, FAILED with failure_reason). A job still PENDING
        was never run (its worker stopped before the end of its pass): it is run now."""
        if not all(j.isdigit() for j in job_ids):
            return RequestStatus.failed(
                Failure(FailureKind.TRANSIENT, "Google Ads: not a job id; pushing again")
            )
        customer = _digits(self.config.operating_account_id)
        query = (
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.id, "
            "offline_user_data_job.status, offline_user_data_job.failure_reason "
            "FROM offline_user_data_job "
            f"WHERE offline_user_data_job.id IN ({', '.join(job_ids)})"
        )
        answer = self._post(
            f"{self._ads_base()}/customers/{customer}/googleAds:search",
            {"query": query},
            self._ads_headers(),
        )
        found = jobs_found(answer)
        processing = False
        for job_number in job_ids:
            job = found.get(job_number)
            if job is None:
                return RequestStatus.failed(
                    Failure(FailureKind.TRANSIENT, "Google Ads: the job is gone; pushing again")
                )
            status = job.get("status")
            if status == "FAILED":
                return RequestStatus.failed(job_failure(job))
            if status == "PENDING":
                try:
                    self._run_job(f"customers/{customer}/offlineUserDataJobs/{job_number}")
                except DestinationError as exc:
                    return RequestStatus.failed(exc.failure())
            if status != "SUCCESS":
                processing = True
        return RequestStatus.processing() if processing else RequestStatus.succeeded()

    # HTTP -------------------------------------------------------------------

    def _post(self, url: str, body: Any, headers: dict[str, str]) -> Any:
        return self._send("POST", url, body, headers)

    def _send(self, method: str, url: str, body: Any, headers: dict[str, str]) -> Any:
        response = self.bearer.send(
            lambda authorization: self.http.request(
                method,
                url,
                headers={**headers, "Authorization": authorization},
                json_body=body,
            )
        )
        answer = body_json(response)
        if response.status_code != 200:
            raise google_error(response, answer)
        return answer

    def close(self) -> None:
        self.http.close()


def _digits(account: str) -> str:
    return account.replace("-", "").strip()
