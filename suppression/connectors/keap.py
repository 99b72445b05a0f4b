"""Keap (InfusionSoft): opt an address out of marketing email.

REST v2 `PATCH /rest/v2/emailAddresses/{email}/status` with `opted_in: false`
and a reason (the default), or XML-RPC `APIEmailService.optOut` (the address
travels in the body instead of the path). One address per call, so a batch is
sent over a few connections at once under a client-side rate limit (a service
account key gets 10 requests a second). Auth: a service account key / PAT in
`X-Keap-API-Key`, or OAuth bearer tokens with rotating refresh tokens.
"""

from __future__ import annotations

import threading
import time
import xmlrpc.client
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote

import requests

from suppression.connectors.base import (
    DestinationError,
    Member,
    Operation,
    PermanentError,
    PushResult,
    RateLimited,
    TransientError,
)
from suppression.connectors.http import Http, body_json, status_error
from suppression.connectors.oauth import BearerAuth, BearerToken, TokenStore

DEFAULT_BASE_URL = "https://api.infusionsoft.com/crm"
TOKEN_URL = "https://api.infusionsoft.com/token"
XMLRPC_KEY_PLACEHOLDER = "backwards-compatability"  # what Keap's own SDK sends there
NOT_FOUND = object()


@dataclass(frozen=True)
class KeapConfig:
    api_key: str | None = None  # service account key or personal access token
    bearer: BearerAuth = field(default_factory=BearerAuth)
    base_url: str = DEFAULT_BASE_URL
    method: str = "rest"  # or "xmlrpc"
    batch_size: int = 100
    concurrency: int = 4
    max_requests_per_second: float = 8.0  # 0: no client-side limit

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
        self.limiter = limiter or RateLimiter(config.max_requests_per_second)

    def push(self, operation: Operation, members: Sequence[Member]) -> PushResult:
        result = PushResult()
        if operation != Operation.SUPPRESS or not members:
            result.confirmed.update(m.key for m in members)
            return result
        stop = threading.Event()  # set on a 429: send nothing more in this batch
        stopped: list[RateLimited] = []

        def one(member: Member) -> tuple[Member, object]:
            if stop.is_set():
                return member, stopped[0]
            self.limiter.wait()
            try:
                return member, self._opt_out(member)
            except RateLimited as exc:
                stopped.append(exc)
                stop.set()
                return member, exc
            except DestinationError as exc:
                return member, exc

        with ThreadPoolExecutor(max_workers=max(1, self.config.concurrency)) as pool:
            outcomes = list(pool.map(one, members))
        for member, outcome in outcomes:
            if outcome is NOT_FOUND:
                result.not_found.add(member.key)
            elif isinstance(outcome, DestinationError):
                result.fail(member.key, outcome.failure())
            else:
                result.confirmed.add(member.key)
        return result

    def _opt_out(self, member: Member) -> object:
        attempt_refresh = self.bearer is not None and self.bearer.refreshable
        while True:
            response = self._rest(member) if self.config.method == "rest" else self._xmlrpc(member)
            if response.status_code == 401 and attempt_refresh and self.bearer is not None:
                self.bearer.invalidate()
                attempt_refresh = False
                continue
            return self._answer(response)

    def _headers(self) -> dict[str, str]:
        if self.config.api_key:
            return {"X-Keap-API-Key": self.config.api_key}
        assert self.bearer is not None
        return {"Authorization": self.bearer.header()}

    def _rest(self, member: Member) -> requests.Response:
        url = f"{self.base_url}/rest/v2/emailAddresses/{quote(member.email, safe='')}/status"
        body = {"opted_in": False, "reason": opt_out_reason(member.reason)}
        return self.http.request("PATCH", url, headers=self._headers(), json_body=body)

    def _xmlrpc(self, member: Member) -> requests.Response:
        payload = xmlrpc.client.dumps(
            (XMLRPC_KEY_PLACEHOLDER, member.email, opt_out_reason(member.reason)),
            methodname="APIEmailService.optOut",
        )
        headers = {**self._headers(), "Content-Type": "text/xml"}
        return self.http.request(
            "POST", f"{self.base_url}/xmlrpc/v1", headers=headers, data=payload.encode()
        )

    def _answer(self, response: requests.Response) -> object:
        status = response.status_code
        if self.config.method == "rest":
            if status == 200:
                return True
            if status == 404:
                return NOT_FOUND
            body = body_json(response)
            detail = str(body.get("message", "")) if isinstance(body, dict) else ""
            raise status_error("Keap", response, detail)
        if status != 200:
            raise status_error("Keap", response)
        try:
            (answer,), _method = xmlrpc.client.loads(response.content)
        except xmlrpc.client.Fault as fault:
            raise PermanentError(f"Keap: fault {fault.faultCode}: {fault.faultString}") from None
        except (ValueError, xmlrpc.client.ResponseError):
            raise TransientError("Keap: unreadable XML-RPC answer") from None
        # optOut answers false when there is no marketable address to opt out.
        return True if answer else NOT_FOUND

    def close(self) -> None:
        self.http.close()


def opt_out_reason(reason: str) -> str:
    """What Keap records as the reason: the reason code, never the address."""
    return f"Suppression service: {reason}"
