"""Bearer tokens: a fixed access token, or OAuth 2 refresh-token grants.

Keap and Microsoft rotate refresh tokens: every refresh answers a new one and
the old one stops working, so the new one is handed to a TokenStore at once
(the sync service keeps it sealed in the database). A token from the
environment is only the seed: once rotated, the stored one is used, until the
operator puts a different one in the environment.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import requests

from suppression.connectors.base import AuthError, TransientError
from suppression.connectors.http import Http, body_json, status_error

EARLY_REFRESH_SECONDS = 120.0


@dataclass(frozen=True)
class OAuthClient:
    token_url: str
    client_id: str
    client_secret: str | None  # None for a public client (a native app has no secret)
    refresh_token: str  # the seed, from the environment
    scope: str | None = None
    basic_auth: bool = False  # client credentials in an Authorization: Basic header

    def __repr__(self) -> str:
        return f"OAuthClient(token_url={self.token_url!r}, client_id={self.client_id!r})"

    @property
    def seed(self) -> str:
        """A fingerprint of the environment's refresh token (not the token)."""
        return hashlib.sha256(self.refresh_token.encode()).hexdigest()


class TokenStore(Protocol):
    def load(self, seed: str) -> str | None:
        """The newest refresh token rotated from the seed, if any."""
        ...

    def save(self, seed: str, refresh_token: str) -> None: ...


class MemoryTokenStore:
    """Keeps the rotated token for the life of the process only."""

    def __init__(self) -> None:
        self._tokens: dict[str, str] = {}

    def load(self, seed: str) -> str | None:
        return self._tokens.get(seed)

    def save(self, seed: str, refresh_token: str) -> None:
        self._tokens[seed] = refresh_token


@dataclass(frozen=True)
class BearerAuth:
    """Either a fixed access token or an OAuth client; settings hold one of them."""

    access_token: str | None = None
    oauth: OAuthClient | None = None

    def __repr__(self) -> str:
        return f"BearerAuth(oauth={self.oauth!r})"

    @property
    def configured(self) -> bool:
        return bool(self.access_token or self.oauth)


class BearerToken:
    """Hands out a valid access token; refreshes before expiry and after a 401."""

    def __init__(
        self,
        platform: str,
        auth: BearerAuth,
        http: Http,
        store: TokenStore | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ):
        if not auth.configured:
            raise ValueError(f"{platform}: no access token and no OAuth client")
        self.platform = platform
        self.auth = auth
        self.http = http
        self.store = store or MemoryTokenStore()
        self.monotonic = monotonic
        self._lock = threading.Lock()
        self._token: str | None = auth.access_token
        self._expires_at = float("inf") if auth.access_token else 0.0

    @property
    def refreshable(self) -> bool:
        return self.auth.oauth is not None

    def header(self) -> str:
        return f"Bearer {self.token()}"

    def token(self) -> str:
        with self._lock:
            if self._token is None or self.monotonic() >= self._expires_at:
                self._refresh()
            assert self._token is not None
            return self._token

    def send(self, call: Callable[[str], requests.Response]) -> requests.Response:
        """`call(authorization_header)`; a 401 refreshes the token and calls once more
        (OAuth only: a fixed access token that was refused stays refused)."""
        response = call(self.header())
        if response.status_code == 401 and self.refreshable:
            self.invalidate()
            response = call(self.header())
        return response

    def invalidate(self) -> None:
        """The platform refused the token: the next call refreshes (OAuth only)."""
        if self.refreshable:
            with self._lock:
                self._token = None

    def _refresh(self) -> None:
        oauth = self.auth.oauth
        if oauth is None:
            raise AuthError(f"{self.platform}: the access token was refused")
        stored = self.store.load(oauth.seed)
        try:
            self._grant(oauth, stored or oauth.refresh_token)
        except AuthError:
            # Another worker may have rotated the token a moment ago: read it again.
            newer = self.store.load(oauth.seed)
            if newer is None or newer == stored:
                raise
            self._grant(oauth, newer)

    def _grant(self, oauth: OAuthClient, refresh_token: str) -> None:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        headers = {"Accept": "application/json"}
        if oauth.basic_auth:
            pair = f"{oauth.client_id}:{oauth.client_secret or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        else:
            form["client_id"] = oauth.client_id
            # A public client sends no secret: Microsoft refuses one from it
            # (MicrosoftDocs/Advertising guides/authentication-oauth-get-tokens.md).
            if oauth.client_secret:
                form["client_secret"] = oauth.client_secret
        if oauth.scope:
            form["scope"] = oauth.scope
        response = self.http.request("POST", oauth.token_url, headers=headers, data=form)
        body = body_json(response)
        if response.status_code in (400, 401) and isinstance(body, dict):
            error = str(body.get("error", "refused"))
            raise AuthError(f"{self.platform}: token refresh refused ({error})")
        if response.status_code != 200 or not isinstance(body, dict):
            raise status_error(f"{self.platform} token endpoint", response)
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise TransientError(f"{self.platform}: token endpoint answered no access_token")
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and rotated != refresh_token:
            self.store.save(oauth.seed, rotated)
        lifetime = float(body.get("expires_in") or 3600)
        self._token = token
        self._expires_at = self.monotonic() + max(0.0, lifetime - EARLY_REFRESH_SECONDS)
