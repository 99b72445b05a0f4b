"""Keap back into the service: list the addresses Keap holds non-marketable.

REST v2 `GET /rest/v2/emailAddresses` (infusionsoft/keap-sdk, sdks/v2/swagger.yml,
operation `listEmailAddressStatuses`): `filter` on `emails`, `statuses` or
`opted_in` with the `==` operator (filters joined by `;`), `order_by` one of
`email`, `status`, `create_time`, ... with `asc` or `desc`, `page_size` at most
1000, and `page_token` taken from the previous answer's `next_page_token`. Each
entry is a `RestEmailAddressStatus`: `email`, `opted_in`, `status`, `create_time`
("when the email status was first recorded").

Reading only: this module never changes anything in Keap. It knows HTTP and
Keap, nothing of our tables; the addresses it returns stay in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from suppression.connectors.base import PermanentError, TransientError
from suppression.connectors.http import Http, body_json, status_error
from suppression.connectors.keap import KeapConfig
from suppression.connectors.oauth import BearerToken, TokenStore

MAX_PAGE_SIZE = 1000  # swagger.yml: page_size maximum 1000
NOT_MARKETABLE = "opted_in==false"


@dataclass(frozen=True, slots=True)
class KeapStatus:
    """One address as Keap reports it. `email` is plaintext: never log it."""

    email: str
    opted_in: bool
    status: str
    create_time: datetime

    def __repr__(self) -> str:
        return f"KeapStatus(status={self.status!r}, create_time={self.create_time.isoformat()})"


@dataclass(frozen=True)
class KeapStatusPage:
    statuses: list[KeapStatus]
    next_page_token: str | None


class KeapStatusReader:
    """Pages through Keap's non-marketable addresses, newest status first."""

    def __init__(
        self,
        config: KeapConfig,
        timeout: float = 30.0,
        token_store: TokenStore | None = None,
        page_size: int = MAX_PAGE_SIZE,
        bearer: BearerToken | None = None,
    ):
        """`bearer`: the push connector's token, shared so that one refresh token
        rotates (Keap issues a new one at each refresh and the old one dies)."""
        if not config.api_key and not config.bearer.configured:
            raise ValueError("Keap needs an API key or OAuth credentials")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"Keap page_size is 1..{MAX_PAGE_SIZE}")
        self.config = config
        self.page_size = page_size
        self.base_url = config.base_url.rstrip("/")
        self.http = Http("Keap", timeout, pool_size=1)
        if config.api_key:
            self.bearer = None
        else:
            self.bearer = bearer or BearerToken("Keap", config.bearer, self.http, token_store)

    def page(self, page_token: str | None = None) -> KeapStatusPage:
        query = {
            "filter": NOT_MARKETABLE,
            "order_by": "create_time desc",
            "page_size": str(self.page_size),
        }
        if page_token:
            query["page_token"] = page_token
        url = f"{self.base_url}/rest/v2/emailAddresses?{urlencode(query)}"
        attempt_refresh = self.bearer is not None and self.bearer.refreshable
        while True:
            response = self.http.request("GET", url, headers=self._headers())
            if response.status_code == 401 and attempt_refresh and self.bearer is not None:
                self.bearer.invalidate()
                attempt_refresh = False
                continue
            break
        body = body_json(response)
        if response.status_code != 200:
            detail = str(body.get("message", "")) if isinstance(body, dict) else ""
            raise status_error("Keap", response, detail)
        return _page_of(body)

    def pages(self, page_token: str | None = None) -> Iterator[KeapStatusPage]:
        """Page after page until Keap gives no next_page_token."""
        while True:
            page = self.page(page_token)
            yield page
            if not page.next_page_token or page.next_page_token == page_token:
                return
            page_token = page.next_page_token

    def _headers(self) -> dict[str, str]:
        if self.config.api_key:
            return {"X-Keap-API-Key": self.config.api_key}
        assert self.bearer is not None
        return {"Authorization": self.bearer.header()}

    def close(self) -> None:
        self.http.close()


def _page_of(body: object) -> KeapStatusPage:
    if not isinstance(body, dict) or not isinstance(body.get("email_addresses", []), list):
        raise TransientError("Keap: unreadable list of email addresses")
    statuses = []
    for entry in body.get("email_addresses") or []:
        statuses.append(_status_of(entry))
    token = body.get("next_page_token")
    return KeapStatusPage(statuses, token if isinstance(token, str) and token else None)


def _status_of(entry: object) -> KeapStatus:
    # swagger.yml RestEmailAddressStatus: email, opted_in, status, create_time required.
    if not isinstance(entry, dict):
        raise PermanentError("Keap: an email address entry is not an object")
    email, opted_in, status = entry.get("email"), entry.get("opted_in"), entry.get("status")
    if not isinstance(email, str) or not isinstance(opted_in, bool) or not isinstance(status, str):
        raise PermanentError("Keap: an email address entry lacks email, opted_in or status")
    return KeapStatus(email, opted_in, status.upper(), _time(entry.get("create_time")))


def _time(value: object) -> datetime:
    if not isinstance(value, str):
        raise PermanentError("Keap: an email address entry lacks create_time")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PermanentError("Keap: unreadable create_time") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
