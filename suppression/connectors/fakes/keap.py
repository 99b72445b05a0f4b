"""A fake Keap: REST v2 email status (PATCH and GET), XML-RPC
APIEmailService.optOut and getOptStatus, and the status list the service reads
back; the key, OAuth tokens and quotas are keap_access.py's, the list's query
rules keap_status_list.py's.

Sources of the rules it enforces: infusionsoft/keap-sdk `sdks/v2/swagger.yml`
(paths, bodies, the `Error` and `RestEmailAddressStatus` schemas) and
infusionsoft/infusionsoft-php `src/Infusionsoft/Api/APIEmailService.php` and
`src/Infusionsoft/Infusionsoft.php` (XML-RPC methods and endpoint)."""

from __future__ import annotations

import re
import xmlrpc.client
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import Fault
from suppression.connectors.fakes.keap_access import KeapAccess
from suppression.connectors.fakes.keap_status_list import LIST_PATH, STATUSES, list_page

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


def xmlrpc_fault(code: int, message: str) -> Fault:
    """A Fault answer for `fail_next` (an XML-RPC fault travels in a 200)."""
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Fault(200, body, headers={"Content-Type": "text/xml"})


class FakeKeap(KeapAccess):
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
        super().__init__(
            api_key,
            client_id,
            client_secret,
            refresh_token,
            throttle_per_minute,
            quota_per_day,
            **options,
        )
        # Addresses Keap keeps opted in whatever it is asked (a 200 with opted_in true,
        # an XML-RPC optOut answering false and getOptStatus 1).
        self.ignores_opt_out: set[str] = set()
        self.known_only = known_only  # then only addresses in `contacts` exist
        self.contacts: set[str] = set()
        self.opted_out: dict[str, str] = {}  # address -> reason
        self.now: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.statuses: dict[str, tuple[str, datetime]] = {}  # address -> (status, create_time)
        self.list_queries: list[dict[str, str]] = []  # each listing's query parameters

    @property
    def base_url(self) -> str:
        return f"{self.url}/crm"

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            return self._token(request)
        if not self._authorised(request):
            return self.json_response(keap_error(401, "Invalid Access Token"), 401)
        if request.path == LIST_PATH:
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

    # The status list, read back by the service (connectors/keap_pull.py) ---------

    def set_status(self, email: str, status: str, at: datetime | None = None) -> None:
        """What happens inside Keap: the person clicks Keap's footer unsubscribe
        (LIST_UNSUBSCRIBE), reports spam (SPAM), bounces (HARD_BOUNCE), or staff
        change the status in Keap. `at` is the status's create_time."""
        if status not in STATUSES:
            raise ValueError(f"Keap has no status {status!r}")
        with self.lock:
            self.statuses[email] = (status, at or self.now())

    def _list_statuses(self, request: Request) -> Response:
        """GET /rest/v2/emailAddresses (listEmailAddressStatuses, swagger.yml)."""
        if request.method != "GET":
            return self.json_response(keap_error(405, "Method not allowed"), 405)
        query = request.args.to_dict()
        with self.lock:
            self.list_queries.append(query)
            try:
                body = list_page(self.statuses, query)
            except ValueError as exc:
                return self.json_response(keap_error(400, str(exc)), 400)
        return self.json_response(body)


def _xml_fault(code: int, message: str) -> Response:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Response(body, 200, mimetype="text/xml")


def _strings(params: tuple[object, ...], count: int) -> list[str] | None:
    """An XML-RPC call's parameters when they are exactly `count` strings, else None."""
    strings = [p for p in params if isinstance(p, str)]
    return strings if len(params) == count and len(strings) == count else None
