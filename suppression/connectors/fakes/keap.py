"""A fake Keap: REST v2 email status (PATCH and GET), XML-RPC
APIEmailService.optOut and getOptStatus, request quotas with Keap's headers, and
the OAuth token endpoint with rotating refresh tokens (research §1).

Sources of the rules it enforces: infusionsoft/keap-sdk `sdks/v2/swagger.yml`
(paths, bodies, the `Error` and `RestEmailAddressStatus` schemas),
infusionsoft/infusionsoft-php `src/Infusionsoft/Api/APIEmailService.php` and
`src/Infusionsoft/Infusionsoft.php` (XML-RPC methods and endpoint), and Keap's
"API Token Quota and Usage Measurements" page (quotas and headers)."""

from __future__ import annotations

import base64
import re
import secrets
import threading
import time
import xmlrpc.client
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, Fault

_STATUS = re.compile(r"^/crm/rest/v2/emailAddresses/(?P<email>[^/]+)/status$")
_XMLRPC = re.compile(r"^/crm/xmlrpc(?:/v1)?$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


# Keap's `Error` schema (swagger.yml): {code, message, status, details: [{domain, resource}]}.
# The schema names the fields only; the values put in `status` and `details` here are
# the fake's own.
def keap_error(status: int, message: str, resource: str | None = None) -> dict[str, Any]:
    phrase = {
        400: "BAD_REQUEST",
        401: "UNAUTHENTICATED",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
    }.get(status, "ERROR")
    details = [{"domain": "emailAddresses", "resource": resource}] if resource else []
    return {"code": status, "message": message, "status": phrase, "details": details}


# A path the API does not route. What Keap's gateway answers there is not documented
# (swagger.yml declares a 404 per operation without saying what it means); the fake
# answers as a server that is not Keap's API would, which is what a wrong base URL
# or route reaches: a 404 with a web page, not Keap's `Error` body.
ROUTE_NOT_FOUND = "<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"


def quota_violation() -> dict[str, Any]:
    """Keap's gateway 429 body (community.keap.com "Apigee migration update", Keap staff)."""
    return {
        "fault": {
            "faultstring": "Rate limit quota violation. Quota limit exceeded.",
            "detail": {"errorcode": "policies.ratelimit.QuotaViolation"},
        }
    }


def xmlrpc_fault(code: int, message: str) -> Fault:
    """A Fault answer for `fail_next` (an XML-RPC fault travels in a 200)."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Fault(200, body, headers={"Content-Type": "text/xml"})


class FakeKeap(FakePlatform):
    name = "keap"

    def __init__(
        self,
        api_key: str = "KeapAK-test-service-account-key",
        client_id: str = "keap-client",
        client_secret: str = "keap-secret",
        refresh_token: str = "keap-refresh-0",
        known_only: bool = False,
        throttle_per_minute: int | None = None,
        quota_per_day: int | None = None,
        **options: Any,
    ):
        super().__init__(**options)
        # Keap's quotas (quota page): a key 240 a minute and 30,000 a day, an OAuth
        # pair 1,500 and 150,000. None: not enforced and no headers (benchmarks).
        self.throttle_per_minute = throttle_per_minute
        self.quota_per_day = quota_per_day
        self.minute_started = time.monotonic()
        self.minute_used = 0
        self.day_used = 0
        self.quota_lock = threading.Lock()
        # Addresses Keap keeps opted in whatever it is asked (a 200 with opted_in true,
        # an XML-RPC optOut answering false and getOptStatus 1).
        self.ignores_opt_out: set[str] = set()
        self.api_key = api_key
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_tokens = {refresh_token}
        self.access_tokens: set[str] = set()
        self.known_only = known_only  # then only addresses in `contacts` exist
        self.contacts: set[str] = set()
        self.opted_out: dict[str, str] = {}  # address -> reason
        self.refreshes = 0
        self._init_status_list()

    @property
    def base_url(self) -> str:
        return f"{self.url}/crm"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            return self._token(request)
        if not self._authorised(request):
            return self.json_response(keap_error(401, "Invalid Access Token"), 401)
        if request.path == _LIST:
            return self._list_statuses(request)
        status = _STATUS.match(request.path)
        if status is not None:
            response = self._within_quota() or self._rest_status(request, status.group("email"))
        elif _XMLRPC.match(request.path) and request.method == "POST":
            response = self._within_quota() or self._xmlrpc(request)
        else:
            response = Response(ROUTE_NOT_FOUND, 404, mimetype="text/html")
        response.headers.extend(self._quota_headers())
        return response

    # Quotas (Keap's quota page: the buckets, 429 when spent, the headers) ---------

    def _within_quota(self) -> Response | None:
        """Count this call; a 429 with the gateway's body once a bucket is spent."""
        with self.quota_lock:
            if time.monotonic() - self.minute_started >= 60:
                self.minute_started = time.monotonic()
                self.minute_used = 0
            over_minute = self.throttle_per_minute is not None and (
                self.minute_used >= self.throttle_per_minute
            )
            over_day = self.quota_per_day is not None and self.day_used >= self.quota_per_day
            if over_minute or over_day:
                return self.json_response(quota_violation(), 429)
            self.minute_used += 1
            self.day_used += 1
        return None

    def _quota_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        with self.quota_lock:
            if self.quota_per_day is not None:
                midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
                expiry = midnight + timedelta(days=1)
                headers.update(
                    {
                        "x-keap-product-quota-limit": str(self.quota_per_day),
                        "x-keap-product-quota-time-unit": "day",
                        "x-keap-product-quota-interval": "1",
                        "x-keap-product-quota-available": str(
                            max(0, self.quota_per_day - self.day_used)
                        ),
                        "x-keap-product-quota-used": str(self.day_used),
                        "x-keap-product-quota-expiry-time": str(int(expiry.timestamp() * 1000)),
                    }
                )
            if self.throttle_per_minute is not None:
                headers.update(
                    {
                        "x-keap-product-throttle-limit": str(self.throttle_per_minute),
                        "x-keap-product-throttle-time-unit": "minute",
                        "x-keap-product-throttle-interval": "1",
                        "x-keap-product-throttle-available": str(
                            max(0, self.throttle_per_minute - self.minute_used)
                        ),
                        "x-keap-product-throttle-used": str(self.minute_used),
                    }
                )
        return headers

    def _authorised(self, request: Request) -> bool:
        key = request.headers.get("X-Keap-API-Key")
        if key is not None:
            return key == self.api_key
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            return bearer in self.access_tokens

    def _held(self, email: str) -> bool:
        return not self.known_only or email in self.contacts

    def _opt_out(self, email: str, reason: str) -> bool:
        with self.lock:
            if not self._held(email) or email in self.ignores_opt_out:
                return False
            self.opted_out[email] = reason
            # Listed back with the status this fake's PATCH answers ("Opt-Out: Manual",
            # the one swagger.yml says an API opt-in can undo).
            self.set_status(email, "MANUAL")
            return True

    def _status_object(self, email: str) -> dict[str, Any]:
        """`RestEmailAddressStatus` (swagger.yml): email and create_time required."""
        with self.lock:
            out = email in self.opted_out
        return {
            "email": email,
            "opted_in": not out,
            "status": "MANUAL" if out else "SINGLE_OPT_IN",
            "create_time": "2026-01-01T00:00:00Z",
        }

    def _rest_status(self, request: Request, email: str) -> Response:
        if request.method == "GET":
            # GET /rest/v2/emailAddresses/{email}/status (getEmailAddressStatus).
            if not self._held(email):
                return self.json_response(
                    keap_error(404, f"Email address {email} not found", "emailAddress"), 404
                )
            return self.json_response(self._status_object(email))
        if request.method != "PATCH":
            return self.json_response(keap_error(405, "Method not allowed"), 405)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or body.get("opted_in") is not False:
            return self.json_response(keap_error(400, "opted_in is required"), 400)
        reason = body.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            return self.json_response(keap_error(400, "reason is required"), 400)
        if not _ADDRESS.match(email):
            # Keap echoes the address it could not use: connectors must redact it.
            return self.json_response(keap_error(400, f"Invalid email address {email}"), 400)
        if not self._held(email):
            return self.json_response(
                keap_error(404, f"Email address {email} not found", "emailAddress"), 404
            )
        self._opt_out(email, reason)
        # The 200 body is the address's status after the change: `opted_in` says
        # whether the opt-out took.
        return self.json_response(self._status_object(email))

    def _xmlrpc(self, request: Request) -> Response:
        try:
            params, method = xmlrpc.client.loads(request.get_data())
        except Exception:
            return _xml_fault(1, "Unreadable XML-RPC request")
        # APIEmailService.php (infusionsoft-php): optOut(email, optOutReason) -> bool,
        # getOptStatus(email) -> int, each after the placeholder key. Fault codes as
        # the community Ruby client numbers them (nateleavitt/infusionsoft
        # exception_handler.rb: 12 InvalidParameter); Keap publishes no list.
        if method == "APIEmailService.optOut":
            strings = _strings(params, 3)
            if strings is None:
                return _xml_fault(12, "[InvalidParameter]optOut takes (key, email, reason)")
            _key, email, reason = strings
            if not reason.strip():
                return _xml_fault(12, "[InvalidParameter]A reason is required")
            answer: bool | int = self._opt_out(email, reason)
        elif method == "APIEmailService.getOptStatus":
            strings = _strings(params, 2)
            if strings is None:
                return _xml_fault(12, "[InvalidParameter]getOptStatus takes (key, email)")
            answer = self._opt_status(strings[1])
        else:
            # The wording Keap's XML-RPC server gives an unknown method
            # (bvalosek/infusionsoft-api issue 3, quoted from a live answer).
            return _xml_fault(0, f"No such handler: {method}")
        body = xmlrpc.client.dumps((answer,), methodresponse=True)
        return Response(body, 200, mimetype="text/xml")

    def _opt_status(self, email: str) -> int:
        """0 non-marketable (opted out, or no marketable record), 1 single opt-in."""
        with self.lock:
            if email in self.ignores_opt_out or (self._held(email) and email not in self.opted_out):
                return 1
            return 0

    def _token(self, request: Request) -> Response:
        header = request.headers.get("Authorization", "")
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if header != f"Basic {expected}":
            return self.json_response({"error": "invalid_client"}, 401)
        if request.form.get("grant_type") != "refresh_token":
            return self.json_response({"error": "unsupported_grant_type"}, 400)
        presented = request.form.get("refresh_token", "")
        with self.lock:
            if presented not in self.refresh_tokens:
                return self.json_response({"error": "invalid_grant"}, 400)
            # Rotation: the presented refresh token dies, a new one is issued.
            self.refresh_tokens.discard(presented)
            self.refreshes += 1
            refresh = f"keap-refresh-{self.refreshes}-{secrets.token_hex(4)}"
            access = f"keap-access-{secrets.token_hex(8)}"
            self.refresh_tokens.add(refresh)
            self.access_tokens.add(access)
        return self.json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 86400,
                "token_type": "bearer",
                "scope": "full",
            }
        )

    # The status list, read back by the service (connectors/keap_pull.py) ---------
    # Source of every rule here: infusionsoft/keap-sdk, sdks/v2/swagger.yml,
    # `GET /rest/v2/emailAddresses` (listEmailAddressStatuses) and its schemas
    # ListEmailAddressStatusResponse and RestEmailAddressStatus.

    def _init_status_list(self) -> None:
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.statuses: dict[str, tuple[str, datetime]] = {}  # address -> (status, create_time)
        self.list_queries: list[dict[str, str]] = []  # each listing's query parameters

    def set_status(self, email: str, status: str, at: datetime | None = None) -> None:
        """What happens inside Keap: the person clicks Keap's footer unsubscribe
        (LIST_UNSUBSCRIBE), reports spam (SPAM), bounces (HARD_BOUNCE), or staff
        change the status in Keap. `at` is the status's create_time."""
        if status not in STATUSES:
            raise ValueError(f"Keap has no status {status!r}")
        with self.lock:
            self.statuses[email] = (status, at or self.now())

    def _list_statuses(self, request: Request) -> Response:
        if request.method != "GET":
            return self.json_response(keap_error(405, "Method not allowed"), 405)
        with self.lock:
            self.list_queries.append(request.args.to_dict())
        try:
            wanted = _filter(request.args.get("filter", ""))
            size = _page_size(request.args.get("page_size"))
            order = _order(request.args.get("order_by"))
            start = _offset(request.args.get("page_token"))
        except ValueError as exc:
            return self.json_response(keap_error(400, str(exc)), 400)
        with self.lock:
            rows = [
                _status_entry(email, status, at)
                for email, (status, at) in self.statuses.items()
                if wanted(email, status)
            ]
        field, descending = order
        rows.sort(key=lambda row: (row[field], row["email"]), reverse=descending)
        page = rows[start : start + size]
        body: dict[str, Any] = {"email_addresses": page}
        if start + size < len(rows):
            body["next_page_token"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return self.json_response(body)


_LIST = "/crm/rest/v2/emailAddresses"
# swagger.yml RestEmailAddressStatus.status: the enum, and which of them are marketable
# (the marketable ones are the states PATCH opted_in=true reaches or keeps).
MARKETABLE = frozenset({"UNENGAGED_MARKETABLE", "SINGLE_OPT_IN", "DOUBLE_OPT_IN", "CONFIRMED"})
STATUSES = MARKETABLE | {
    "UNENGAGED_NON_MARKETABLE",
    "NON_MARKETABLE",
    "LOCKDOWN",
    "BOUNCE",
    "HARD_BOUNCE",
    "MANUAL",
    "ADMIN",
    "SYSTEM",
    "LIST_UNSUBSCRIBE",
    "FEEDBACK",
    "SPAM",
    "INVALID",
    "DEACTIVATED",
}
# swagger.yml page_size: maximum 1000, minimum 0.
MAX_PAGE_SIZE = 1000
# swagger.yml order_by: one of these fields, then asc or desc.
ORDER_FIELDS = ("email", "status", "create_time")


def _status_entry(email: str, status: str, at: datetime) -> dict[str, Any]:
    return {
        "email": email,
        "opted_in": status in MARKETABLE,
        "status": status,
        "create_time": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
    }


def _filter(text: str) -> Callable[[str, str], bool]:
    """swagger.yml filter: fields `emails` (set), `statuses` (set), `opted_in`
    (boolean), each with `==`; several are joined by `;` (as the other list
    operations' examples show)."""
    emails: set[str] | None = None
    statuses: set[str] | None = None
    opted_in: bool | None = None
    for part in filter(None, text.split(";")):
        name, sep, value = part.partition("==")
        if not sep:
            raise ValueError(f"Invalid filter {part!r}: use field==value")
        values = {v.strip() for v in value.split(",") if v.strip()}
        if name == "emails":
            emails = values
        elif name == "statuses":
            unknown = values - STATUSES
            if unknown:
                raise ValueError(f"Invalid status {sorted(unknown)[0]}")
            statuses = values
        elif name == "opted_in":
            if value not in ("true", "false"):
                raise ValueError("opted_in must be true or false")
            opted_in = value == "true"
        else:
            raise ValueError(f"Invalid filter field {name!r}")

    def wanted(email: str, status: str) -> bool:
        return (
            (emails is None or email in emails)
            and (statuses is None or status in statuses)
            and (opted_in is None or (status in MARKETABLE) == opted_in)
        )

    return wanted


def _page_size(text: str | None) -> int:
    if text is None:
        return MAX_PAGE_SIZE
    if not text.isdigit() or int(text) > MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 0..{MAX_PAGE_SIZE}")
    return int(text) or MAX_PAGE_SIZE


def _order(text: str | None) -> tuple[str, bool]:
    if not text:
        return "email", False
    field, _, direction = text.strip().partition(" ")
    if field not in ORDER_FIELDS or direction.strip() not in ("", "asc", "desc"):
        raise ValueError(f"Invalid order_by {text!r}")
    return field, direction.strip() == "desc"


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except ValueError:
        raise ValueError("Invalid page_token") from None


def _xml_fault(code: int, message: str) -> Response:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Response(body, 200, mimetype="text/xml")


def _strings(params: tuple[object, ...], count: int) -> list[str] | None:
    """An XML-RPC call's parameters when they are exactly `count` strings, else None."""
    strings = [p for p in params if isinstance(p, str)]
    return strings if len(params) == count and len(strings) == count else None
