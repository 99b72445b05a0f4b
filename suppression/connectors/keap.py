"""Keap (InfusionSoft): opt an address out of marketing email.

REST v2 `PATCH /rest/v2/emailAddresses/{email}/status` with `opted_in: false`
and a reason (the default), or XML-RPC `APIEmailService.optOut` (the address
travels in the body instead of the path). One address per call, so a batch is
sent over a few connections at once, paced at the quota of the credential kind
(`keap_quota`). Auth: a service account key / PAT in `X-Keap-API-Key`, or OAuth
bearer tokens with rotating refresh tokens.

Only what Keap really did counts: a 200 whose status still says opted in is not a
confirmation, a 404 means "not held" only when Keap's own error body says so and a
read of the address's status agrees, and an answer in no Keap shape (a wrong base
URL or route) is a configuration failure that parks the rows.
"""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote
from xml.parsers.expat import ExpatError

import requests

from suppression.connectors.base import (
    ConfigurationError,
    DestinationError,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    TransientError,
)
from suppression.connectors.http import Http, body_json, retry_after_seconds, status_error
from suppression.connectors.keap_answers import (
    fault_error,
    is_email_status,
    is_keap_error,
    opted_out,
)
from suppression.connectors.keap_quota import default_requests_per_second, read_quota_headers
from suppression.connectors.oauth import BearerAuth, BearerToken, TokenStore

DEFAULT_BASE_URL = "https://api.infusionsoft.com/crm"
TOKEN_URL = "https://api.infusionsoft.com/token"
XMLRPC_KEY_PLACEHOLDER = "backwards-compatability"  # what Keap's own SDK sends there
NOT_FOUND = object()
CONFIRMED = object()
CHECK_BASE_URL = "check KEAP_BASE_URL"


@dataclass(frozen=True)
class KeapConfig:
    api_key: str | None = None  # service account key or personal access token
    bearer: BearerAuth = field(default_factory=BearerAuth)
    base_url: str = DEFAULT_BASE_URL
    method: str = "rest"  # or "xmlrpc"
    batch_size: int = 100
    concurrency: int = 4
    # None: the per-minute quota of the credential kind (keap_quota); 0: no limit
    max_requests_per_second: float | None = None

    def __repr__(self) -> str:
        return f"KeapConfig(base_url={self.base_url!r}, method={self.method!r})"


class RateLimiter:
    """At most `rate` calls a second across threads (0: unlimited)."""

    def __init__(
        self,
        rate: float,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.monotonic = monotonic
        self.sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        if not self.interval:
            return
        with self._lock:
            now = self.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


class _Batch:
    """One push: once Keap says to stop (429, a spent quota, a wrong base URL),
    nothing more is sent and the members left share that failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reason: DestinationError | None = None

    def halt(self, reason: DestinationError) -> None:
        with self._lock:
            if self.reason is None:
                self.reason = reason


class KeapConnector:
    name = "keap"
    kind = "keap"
    targets: tuple[str, ...] = ("email_status",)
    restores = False  # Keap is never told to opt anyone back in

    def __init__(
        self,
        config: KeapConfig,
        timeout: float = 30.0,
        token_store: TokenStore | None = None,
        limiter: RateLimiter | None = None,
        wall_clock: Callable[[], float] = time.time,
    ):
        if config.method not in ("rest", "xmlrpc"):
            raise ValueError("Keap method is rest or xmlrpc")
        if not config.api_key and not config.bearer.configured:
            raise ValueError("Keap needs an API key or OAuth credentials")
        self.config = config
        self.batch_size = config.batch_size
        self.base_url = config.base_url.rstrip("/")
        self.http = Http("Keap", timeout, pool_size=max(1, config.concurrency))
        self.bearer = (
            None if config.api_key else BearerToken("Keap", config.bearer, self.http, token_store)
        )
        rate = config.max_requests_per_second
        if rate is None:
            rate = default_requests_per_second(api_key=bool(config.api_key))
        self.limiter = limiter or RateLimiter(rate)
        self.wall_clock = wall_clock  # epoch seconds: Keap's quota expiry is an epoch time

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        result = PushResult()
        if operation != Operation.SUPPRESS or not members:
            result.confirmed.update(m.key for m in members)
            return result
        batch = _Batch()

        def one(member: Member) -> tuple[Member, object]:
            if batch.reason is not None:
                return member, batch.reason
            try:
                return member, self._opt_out(member, batch)
            except (RateLimited, ConfigurationError) as exc:
                batch.halt(exc)
                return member, exc
            except DestinationError as exc:
                return member, exc

        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            outcomes = list(pool.map(one, members))
        for member, outcome in outcomes:
            if outcome is NOT_FOUND:
                result.not_found.add(member.key)
            elif outcome is CONFIRMED:
                result.confirmed.add(member.key)
            else:
                assert isinstance(outcome, DestinationError)
                result.fail(member.key, outcome.failure())
        return result

    def _opt_out(self, member: Member, batch: _Batch) -> object:
        if self.config.method == "rest":
            return self._rest_opt_out(member, batch)
        return self._xmlrpc_opt_out(member, batch)

    # Sending -----------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        if self.config.api_key:
            return {"X-Keap-API-Key": self.config.api_key}
        assert self.bearer is not None
        return {"Authorization": self.bearer.header()}

    def _send(
        self,
        method: str,
        url: str,
        batch: _Batch,
        json_body: object = None,
        xml: bytes | None = None,
    ) -> requests.Response:
        """One paced call (a second one after refreshing a refused OAuth token).
        The quota headers of every answer are read: a spent bucket halts the batch
        after this call; a 429 raises."""
        attempt_refresh = self.bearer is not None and self.bearer.refreshable
        extra = {"Content-Type": "text/xml"} if xml is not None else {}
        while True:
            self.limiter.wait()
            response = self.http.request(
                method, url, headers={**self._headers(), **extra}, json_body=json_body, data=xml
            )
            reading = read_quota_headers(response.headers)
            spent = reading.exhausted(self.wall_clock())
            if response.status_code == 401 and attempt_refresh and self.bearer is not None:
                self.bearer.invalidate()
                attempt_refresh = False
                continue
            if response.status_code == 429:
                raise spent or RateLimited(
                    "Keap: HTTP 429: too many requests",
                    retry_after_seconds(response.headers.get("Retry-After"))
                    or reading.throttle_window_seconds,
                )
            if spent is not None:
                batch.halt(spent)
            if 300 <= response.status_code < 400:
                raise ConfigurationError(
                    f"Keap: HTTP {response.status_code} redirect instead of an API answer; "
                    + CHECK_BASE_URL
                )
            return response

    # REST v2 -----------------------------------------------------------------

    def _status_url(self, member: Member) -> str:
        return f"{self.base_url}/rest/v2/emailAddresses/{quote(member.email, safe='')}/status"

    def _rest_opt_out(self, member: Member, batch: _Batch) -> object:
        body = {"opted_in": False, "reason": opt_out_reason(member.reason)}
        response = self._send("PATCH", self._status_url(member), batch, json_body=body)
        if response.status_code == 200:
            answer = self._status_answer(response, "PATCH")
            return CONFIRMED if answer is True else self._read_status(member, batch)
        if response.status_code == 404:
            self._require_keap_error(response, "PATCH")
            # Keap's 404 is declared without a meaning (swagger.yml): ask what it holds.
            return self._read_status(member, batch)
        raise self._rest_error(response)

    def _read_status(self, member: Member, batch: _Batch) -> object:
        """`GET /rest/v2/emailAddresses/{email}/status`: the address's state now."""
        response = self._send("GET", self._status_url(member), batch)
        if response.status_code == 200:
            answer = self._status_answer(response, "GET")
            if answer is None:
                raise PermanentError("Keap: the address status says neither opted in nor out")
            return CONFIRMED
        if response.status_code == 404:
            self._require_keap_error(response, "GET")
            return NOT_FOUND
        raise self._rest_error(response)

    def _status_answer(self, response: requests.Response, method: str) -> bool | None:
        """True when the status object shows the address opted out; raises when it
        is still opted in, or when the body is not Keap's status object at all."""
        body = body_json(response)
        if not is_email_status(body):
            raise ConfigurationError(
                f"Keap: {method} answered 200 without an email address status; " + CHECK_BASE_URL
            )
        state = opted_out(body)
        if state is False:
            raise PermanentError(
                f"Keap: the address is still opted in after the opt-out ({body.get('status')})"
            )
        return state

    def _require_keap_error(self, response: requests.Response, method: str) -> None:
        if not is_keap_error(body_json(response)):
            raise ConfigurationError(
                f"Keap: {method} answered 404 without Keap's error body (the route, not "
                "the address, was not found); " + CHECK_BASE_URL
            )

    def _rest_error(self, response: requests.Response) -> DestinationError:
        body = body_json(response)
        detail = str(body.get("message", "")) if isinstance(body, dict) else ""
        return status_error("Keap", response, detail)

    # XML-RPC -----------------------------------------------------------------

    def _xmlrpc_opt_out(self, member: Member, batch: _Batch) -> object:
        reason = opt_out_reason(member.reason)
        answer = self._xmlrpc("APIEmailService.optOut", (member.email, reason), batch)
        if answer is True:
            return CONFIRMED
        if answer is not False:
            raise PermanentError("Keap: optOut answered something other than a boolean")
        # What `false` means is not documented: ask for the address's opt status
        # (APIEmailService.getOptStatus in infusionsoft/infusionsoft-php:
        # 0 non-marketable, 1 single opt-in, 2 double opt-in).
        status = self._xmlrpc("APIEmailService.getOptStatus", (member.email,), batch)
        if type(status) is int and status == 0:
            return CONFIRMED
        if type(status) is int and status in (1, 2):
            raise PermanentError(
                f"Keap: optOut answered false and the address is still marketable "
                f"(getOptStatus {status})"
            )
        raise PermanentError("Keap: getOptStatus answered something other than 0, 1 or 2")

    def _xmlrpc(self, method: str, params: tuple[str, ...], batch: _Batch) -> object:
        payload = xmlrpc.client.dumps((XMLRPC_KEY_PLACEHOLDER, *params), methodname=method)
        response = self._send("POST", f"{self.base_url}/xmlrpc/v1", batch, xml=payload.encode())
        if response.status_code == 404:
            raise ConfigurationError("Keap: the XML-RPC endpoint answered 404; " + CHECK_BASE_URL)
        if response.status_code != 200:
            raise status_error("Keap", response)
        try:
            (answer,), _method = xmlrpc.client.loads(response.content)
        except xmlrpc.client.Fault as fault:
            raise fault_error(fault) from None
        except (ExpatError, ValueError, xmlrpc.client.ResponseError):
            if b"methodResponse" not in response.content:
                raise ConfigurationError(
                    "Keap: the XML-RPC endpoint answered something other than XML-RPC; "
                    + CHECK_BASE_URL
                ) from None
            raise TransientError("Keap: unreadable XML-RPC answer") from None
        return answer

    def close(self) -> None:
        self.http.close()


def opt_out_reason(reason: str) -> str:
    """What Keap records as the reason: the reason code, never the address."""
    return f"Suppression service: {reason}"
