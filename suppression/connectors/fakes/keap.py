"""A fake Keap: REST v2 email status, XML-RPC APIEmailService.optOut, and the
OAuth token endpoint with rotating refresh tokens (research §1)."""

from __future__ import annotations

import base64
import re
import secrets
import xmlrpc.client
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform

_STATUS = re.compile(r"^/crm/rest/v2/emailAddresses/(?P<email>[^/]+)/status$")
_XMLRPC = re.compile(r"^/crm/xmlrpc(?:/v1)?$")
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def keap_error(status: int, message: str) -> dict[str, Any]:
    phrase = {400: "BAD_REQUEST", 401: "UNAUTHENTICATED", 404: "NOT_FOUND"}.get(status, "ERROR")
    return {"code": status, "message": message, "status": phrase, "details": []}


class FakeKeap(FakePlatform):
    name = "keap"

    def __init__(
        self,
        api_key: str = "KeapAK-test-service-account-key",
        client_id: str = "keap-client",
        client_secret: str = "keap-secret",
        refresh_token: str = "keap-refresh-0",
        known_only: bool = False,
        **options: Any,
    ):
        super().__init__(**options)
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
            return self._rest_status(request, status.group("email"))
        if _XMLRPC.match(request.path) and request.method == "POST":
            return self._xmlrpc(request)
        return self.json_response(keap_error(404, "No such endpoint"), 404)

    def _authorised(self, request: Request) -> bool:
        key = request.headers.get("X-Keap-API-Key")
        if key is not None:
            return key == self.api_key
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            return bearer in self.access_tokens

    def _opt_out(self, email: str, reason: str) -> bool:
        with self.lock:
            if self.known_only and email not in self.contacts:
                return False
            self.opted_out[email] = reason
            # Listed back with the status this fake's PATCH answers ("Opt-Out: Manual",
            # the one swagger.yml says an API opt-in can undo).
            self.set_status(email, "MANUAL")
            return True

    def _rest_status(self, request: Request, email: str) -> Response:
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
        if not self._opt_out(email, reason):
            return self.json_response(keap_error(404, f"Email address {email} not found"), 404)
        return self.json_response(
            {
                "email": email,
                "opted_in": False,
                "status": "MANUAL",
                "create_time": "2026-01-01T00:00:00Z",
            }
        )

    def _xmlrpc(self, request: Request) -> Response:
        try:
            params, method = xmlrpc.client.loads(request.get_data())
        except Exception:
            return _xml_fault(1, "Unreadable XML-RPC request")
        if method != "APIEmailService.optOut":
            return _xml_fault(2, f"No method matching {method}")
        if len(params) != 3 or not all(isinstance(p, str) for p in params):
            return _xml_fault(3, "optOut takes (key, email, reason)")
        _key, email, reason = params
        if not reason.strip():
            return _xml_fault(4, "A reason is required")
        answer = self._opt_out(email, reason)
        body = xmlrpc.client.dumps((answer,), methodresponse=True)
        return Response(body, 200, mimetype="text/xml")

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
