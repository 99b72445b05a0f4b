"""A fake Meta Marketing API: custom audience users edges (research §2)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from typing import Any

from werkzeug.wrappers import Request, Response

from suppression.connectors.fakes.base import FakePlatform, Fault, is_sha256_hex

VERSION = "v25.0"
MAX_ROWS = 10_000
_USERS = re.compile(r"^/(?:v\d+\.\d+/)?(?P<audience>\d+)/users$")
_ANY = re.compile(r"^/(?:v\d+\.\d+/)?act_(?P<account>\d+)/usersofanyaudience$")


def graph_error(
    code: int, message: str, subcode: int | None = None, kind: str = "OAuthException"
) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": kind, "code": code, "fbtrace_id": "Afake"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error}


class FakeMeta(FakePlatform):
    name = "meta"

    def __init__(
        self,
        access_token: str = "meta-test-token",
        audience_ids: tuple[str, ...] = ("23850000000000001",),
        ad_account_id: str = "1234567890",
        app_secret: str | None = None,
        **options: Any,
    ):
        super().__init__(**options)
        self.access_token = access_token
        # Set: the app has "Require App Secret" on and every call needs appsecret_proof.
        self.app_secret = app_secret
        self.audiences: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.ad_account_id = ad_account_id
        self.removed: dict[str, set[str]] = {a: set() for a in audience_ids}
        self.account_removed: set[str] = set()
        self.batch_sizes: list[int] = []

    @property
    def base_url(self) -> str:
        return f"{self.url}/{VERSION}"

    def add_audience(self, audience_id: str, members: set[str] | None = None) -> None:
        with self.lock:
            self.audiences[audience_id] = set(members or ())
            self.removed.setdefault(audience_id, set())

    def throttle_next(self, count: int = 1, regain_minutes: int = 1, code: int = 80004) -> None:
        """Meta's ad-account throttle: a Graph error plus the usage header."""
        usage = {
            self.ad_account_id: [
                {
                    "type": "ads_management",
                    "call_count": 100,
                    "estimated_time_to_regain_access": regain_minutes,
                }
            ]
        }
        self.fail_next(
            count,
            Fault(
                400,
                graph_error(code, "There have been too many calls to this ad-account.", 2446079),
                {"X-Business-Use-Case-Usage": json.dumps(usage)},
            ),
        )

    def handle(self, request: Request) -> Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = token or request.args.get("access_token", "")
        if token != self.access_token:
            return self.json_response(graph_error(190, "Invalid OAuth access token."), 400)
        refused = self._check_appsecret_proof(request, token)
        if refused is not None:
            return refused
        users = _USERS.match(request.path)
        every = _ANY.match(request.path)
        if users is None and every is None:
            return self.json_response(graph_error(100, "Unknown path components", 33), 400)
        if request.method not in ("POST", "DELETE") or (every and request.method != "DELETE"):
            return self.json_response(graph_error(100, "Unsupported method", 33), 400)
        payload = _field(request, "payload")
        session = _field(request, "session")
        problem = _check_payload(payload)
        if problem:
            return self.json_response(graph_error(100, problem, kind="GraphMethodException"), 400)
        data: list[str] = payload["data"]
        with self.lock:
            self.batch_sizes.append(len(data))
            if every is not None:
                if every.group("account") != self.ad_account_id:
                    return self.json_response(
                        graph_error(100, "Unsupported delete request", 33), 400
                    )
                for members in self.audiences.values():
                    members.difference_update(data)
                self.account_removed.update(data)
                return self.json_response({"success": True, "num_received": len(data)})
            audience = users.group("audience") if users else ""
            if audience not in self.audiences:
                return self.json_response(graph_error(100, "Unsupported post request", 33), 400)
            if request.method == "DELETE":
                self.audiences[audience].difference_update(data)
                self.removed[audience].update(data)
            else:
                self.audiences[audience].update(data)
        session_id = session.get("session_id") if isinstance(session, dict) else None
        return self.json_response(
            {
                "audience_id": audience,
                "session_id": session_id,
                "num_received": len(data),
                "num_invalid_entries": 0,
                "invalid_entry_samples": {},
            }
        )

    def _check_appsecret_proof(self, request: Request, token: str) -> Response | None:
        """Graph API "Secure Graph API Calls" (developers.facebook.com/docs/graph-api/
        securing-requests): with "Require App Secret" on, a call needs
        appsecret_proof, the HMAC-SHA256 of its access token keyed with the app
        secret, hex (as facebook-python-business-sdk session.py computes it). The
        answers are Graph's code 100 GraphMethodException errors as Meta words them
        (the reference page shows no error body)."""
        if self.app_secret is None:
            return None
        # A plain parameter, in the query or the body (the SDK sends it as a query one).
        body = request.get_json(silent=True) if request.is_json else None
        presented = (
            body.get("appsecret_proof")
            if isinstance(body, dict)
            else request.form.get("appsecret_proof") or request.args.get("appsecret_proof")
        )
        if not presented:
            message = "API calls from the server require an appsecret_proof argument"
            return self.json_response(graph_error(100, message, kind="GraphMethodException"), 400)
        expected = hmac.new(self.app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
        if not isinstance(presented, str) or not hmac.compare_digest(presented, expected):
            message = "Invalid appsecret_proof provided in the API argument"
            return self.json_response(graph_error(100, message, kind="GraphMethodException"), 400)
        return None


def _field(request: Request, name: str) -> Any:
    """JSON body fields, or form/query fields holding JSON strings (both are used)."""
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict) and name in body:
        return body[name]
    raw = request.form.get(name) or request.args.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _check_payload(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return "(#100) The parameter payload is required"
    schema = payload.get("schema")
    if schema not in ("EMAIL_SHA256", ["EMAIL_SHA256"]):
        return f"(#100) Unsupported schema {schema!r} for this call"
    data = payload.get("data")
    if not isinstance(data, list) or not data:
        return "(#100) payload.data must be a non-empty list"
    if len(data) > MAX_ROWS:
        return f"(#100) Too many rows: at most {MAX_ROWS} per request"
    if not all(is_sha256_hex(item) for item in data):
        return "(#100) EMAIL_SHA256 rows must be SHA-256 lower-case hex"
    return None
