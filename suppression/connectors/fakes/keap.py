"""A fake Keap: REST v2 email status, XML-RPC APIEmailService.optOut, and the
OAuth token endpoint with rotating refresh tokens (research §1)."""

from __future__ import annotations

import base64
import re
import secrets
import xmlrpc.client
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


def _xml_fault(code: int, message: str) -> Response:
    body = xmlrpc.client.dumps(xmlrpc.client.Fault(code, message), methodresponse=True)
    return Response(body, 200, mimetype="text/xml")
