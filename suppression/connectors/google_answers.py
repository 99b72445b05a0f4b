"""What Google's answers mean: its error model (both APIs), a Data Manager request
status (request_status_per_destination.proto, processing_errors.proto), and the
Ads API's partial failures and offline user data job states
(offline_user_data_job.proto, enums/offline_user_data_job_failure_reason.proto).
"""

from __future__ import annotations

import re
from typing import Any

import requests

from suppression.connectors.base import (
    AuthError,
    DestinationError,
    Failure,
    FailureKind,
    PermanentError,
    RateLimited,
    RequestStatus,
    TransientError,
)
from suppression.connectors.http import retry_after_seconds

TRANSIENT_STATUSES = frozenset({"UNAVAILABLE", "INTERNAL", "DEADLINE_EXCEEDED", "ABORTED"})
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)s$")
# ProcessingErrorReason (processing_errors.proto) worth retrying as such; any
# other reason is the data's or the account's problem (permanent).
TRANSIENT_PROCESSING_ERRORS = frozenset(
    {"PROCESSING_ERROR_REASON_INTERNAL_ERROR", "PROCESSING_ERROR_REASON_UNSPECIFIED"}
)
# OfflineUserDataJobFailureReason (enums/offline_user_data_job_failure_reason.proto)
# that names no cause: the job is retried like an outage.
UNNAMED_JOB_FAILURES = frozenset({"", "UNSPECIFIED", "UNKNOWN"})


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


def data_manager_status(answer: Any) -> RequestStatus:
    """One `requestStatus:retrieve` answer: one status per destination. SUCCESS
    everywhere is done; FAILED or PARTIAL_SUCCESS anywhere fails the members (the
    status counts errors per reason, it does not say which members failed, and a
    second removal of the same people is harmless); anything else is not final."""
    answer = answer if isinstance(answer, dict) else {}
    statuses = answer.get("requestStatusPerDestination")
    if not isinstance(statuses, list) or not statuses:
        return RequestStatus.processing()  # nothing to read yet
    processing = False
    for status in statuses:
        status = status if isinstance(status, dict) else {}
        state = status.get("requestStatus")
        if state in ("FAILED", "PARTIAL_SUCCESS"):
            return RequestStatus.failed(processing_failure(state, status.get("errorInfo")))
        if state != "SUCCESS":
            processing = True  # PROCESSING, or REQUEST_STATUS_UNKNOWN
    return RequestStatus.processing() if processing else RequestStatus.succeeded()


def processing_failure(state: str, error_info: Any) -> Failure:
    """A FAILED or PARTIAL_SUCCESS destination status: its error counts per
    ProcessingErrorReason (processing_errors.proto, ErrorInfo) say whether to
    retry as an outage or count it as permanent."""
    counts = error_info.get("errorCounts") if isinstance(error_info, dict) else None
    reasons = [
        f"{c.get('reason', 'PROCESSING_ERROR_REASON_UNSPECIFIED')} x{c.get('recordCount', '?')}"
        for c in counts or []
        if isinstance(c, dict)
    ]
    names = {r.split(" x")[0] for r in reasons}
    kind = FailureKind.TRANSIENT if names <= TRANSIENT_PROCESSING_ERRORS else FailureKind.PERMANENT
    detail = ", ".join(reasons) if reasons else "no error counts"
    return Failure(kind, f"Google: removal {state} ({detail})")


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


def jobs_found(answer: Any) -> dict[str, dict[str, Any]]:
    """A GoogleAdsService search for offline_user_data_job rows: each job by its id."""
    results = answer.get("results") if isinstance(answer, dict) else None
    found: dict[str, dict[str, Any]] = {}
    for row in results or []:
        job = (row or {}).get("offlineUserDataJob") or {}
        number = job_id(str(job.get("resourceName", "")))
        if number is not None:
            found[number] = job
    return found


def job_failure(job: dict[str, Any]) -> Failure:
    """A FAILED job: a named failure_reason is the data's or the account's problem."""
    reason = str(job.get("failureReason") or "")
    kind = FailureKind.TRANSIENT if reason in UNNAMED_JOB_FAILURES else FailureKind.PERMANENT
    return Failure(kind, f"Google Ads: the job failed {reason}".strip())


def job_id(resource: str) -> str | None:
    """The id of customers/{customer}/offlineUserDataJobs/{id}."""
    head, _, tail = resource.rpartition("/offlineUserDataJobs/")
    return tail if head and tail.isdigit() else None
