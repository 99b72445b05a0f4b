"""Rate limits on the public pages: Flask-Limiter, one Limiter per app (the tests
build many apps), counting in memory or, when REDIS_URL is set, in Redis so that
every worker and host shares the count.

People viewing and submitting pages are limited per client address by
PUBLIC_RATE_LIMIT. RFC 8058 one-click POSTs to `/u/<token>` are counted apart,
under the much higher ONE_CLICK_RATE_LIMIT: mailbox providers send them for all
their users from a handful of addresses, and an unsubscribe must not be lost to a
limit meant for people. Only that one route is exempt from the page limit: the
one-click body sent to any other page is a page request like any other. If the
limit's storage fails, requests are let through (an opt-out is worth more than a
limit; pages are counted in memory until Redis is back).

A one-click is counted with one hit on the Limiter's own storage
(`count_one_click`, called by the view before it reads the token, so that a flood
of made-up tokens spends the budget too) and skipped by Flask-Limiter's
per-request evaluation of the page limits, which cost about a fifth of a
one-click's CPU (benchmarks/load.py).

The client address is `request.remote_addr`: behind reverse proxies, the one
TRUSTED_PROXY_HOPS finds in X-Forwarded-For (suppression/app/proxies.py).

Without Redis the counts live in `SweptMemoryStorage`: limits' memory storage
started a new timer thread to sweep expired counts 10 ms after nearly every hit
(a thread start for every two or three one-clicks under load, profiled in
benchmarks/load.py); this one sweeps in the calling thread at most once a
second. An expired count is never read either way (the storage checks each
count's expiry when it reads it); the sweep only frees memory.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from flask import Blueprint, Flask, current_app, request
from flask_limiter import Limiter
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage

from suppression.config.settings import Settings

EXTENSION = "suppression.public_limits"
ONE_CLICK_SCOPE = "one-click"
_IS_ONE_CLICK = "suppression.is_one_click"  # the answer, kept for the request
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


SWEEP_SECONDS = 1.0


class SweptMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, swept inline at most every SWEEP_SECONDS instead
    of by a timer thread started after a hit (see the module docstring)."""

    STORAGE_SCHEME = ["suppression-memory"]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: str):
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self.timer.cancel()  # the one MemoryStorage starts on creation
        self.swept_at = time.monotonic()

    # MemoryStorage calls its private __schedule_expiry on every write.
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now - self.swept_at >= SWEEP_SECONDS:
            self.swept_at = now
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


ONE_CLICK_BODY = f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}".encode()
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def is_one_click() -> bool:
    """An RFC 8058 one-click POST: the body `List-Unsubscribe=One-Click`, form-encoded
    or multipart (and, leniently, the same bytes sent under another content type)."""
    answer = request.environ.get(_IS_ONE_CLICK)
    if answer is None:
        answer = request.environ[_IS_ONE_CLICK] = _is_one_click()
    return answer


def _is_one_click() -> bool:
    if request.method != "POST":
        return False
    if request.form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:
        return True
    length = request.content_length
    if request.mimetype in FORM_TYPES or length is None or length > 2 * len(ONE_CLICK_BODY):
        return False
    return request.get_data(cache=True).strip() == ONE_CLICK_BODY


def client_address() -> str:
    """The client's address (behind proxies, as TRUSTED_PROXY_HOPS finds it:
    suppression/app/proxies.py)."""
    return request.remote_addr or "unknown"


@dataclass(frozen=True)
class PublicLimits:
    """The pages' Limiter and the one-click limit it counts apart."""

    limiter: Limiter
    one_click: RateLimitItem


class OneClickLimited(Exception):
    """Too many one-clicks from one client address."""

    def __init__(self, limit: RateLimitItem):
        super().__init__(str(limit))
        self.retry_after = limit.get_expiry()


def install(
    app: Flask, blueprint: Blueprint, settings: Settings, one_click_endpoint: str
) -> Limiter:
    """The page limit on every route of `blueprint`; one-clicks POSTed to
    `one_click_endpoint` (and only there) are counted apart by count_one_click."""
    limiter = Limiter(
        key_func=client_address,
        storage_uri=settings.redis_url or f"{SweptMemoryStorage.STORAGE_SCHEME[0]}://",
        key_prefix="suppression-public",
        headers_enabled=False,  # the 429 page sets Retry-After itself
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.limit(settings.links.page_rate_limit, scope="public-pages")(blueprint)

    @limiter.request_filter
    def one_click_counted_apart() -> bool:
        return request.endpoint == one_click_endpoint and is_one_click()

    limiter.init_app(app)
    app.extensions[EXTENSION] = PublicLimits(limiter, parse(settings.links.one_click_rate_limit))
    return limiter


def count_one_click() -> None:
    """One hit on the one-click limit of this client address; OneClickLimited when
    it is spent. A storage that fails lets the unsubscribe through."""
    limits: PublicLimits = current_app.extensions[EXTENSION]
    limit, strategy = limits.one_click, limits.limiter.limiter
    try:
        allowed = strategy.hit(limit, "suppression-public", ONE_CLICK_SCOPE, client_address())
    except Exception:  # any storage failure: see the module docstring
        return
    if not allowed:
        raise OneClickLimited(limit)
