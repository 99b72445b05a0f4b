"""Rate limits on the public pages: Flask-Limiter, one Limiter per app (the tests
build many apps), counting in memory or, when REDIS_URL is set, in Redis so that
every worker and host shares the count.

People viewing and submitting pages are limited per client address by
PUBLIC_RATE_LIMIT. RFC 8058 one-click POSTs are counted apart, under the much
higher ONE_CLICK_RATE_LIMIT: mailbox providers send them for all their users from
a handful of addresses, and an unsubscribe must not be lost to a limit meant for
people. If the limit's storage fails, requests are let through (an opt-out is
worth more than a limit) and counted in memory until Redis is back.
"""

from __future__ import annotations

from flask import Blueprint, Flask, request
from flask_limiter import Limiter

from suppression.config import Settings

EXTENSION = "suppression.public_limiter"
ONE_CLICK_FIELD = "List-Unsubscribe"
ONE_CLICK_VALUE = "One-Click"


ONE_CLICK_BODY = f"{ONE_CLICK_FIELD}={ONE_CLICK_VALUE}".encode()
FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def is_one_click() -> bool:
    """An RFC 8058 one-click POST: the body `List-Unsubscribe=One-Click`, form-encoded
    or multipart (and, leniently, the same bytes sent under another content type)."""
    if request.method != "POST":
        return False
    if request.form.get(ONE_CLICK_FIELD) == ONE_CLICK_VALUE:
        return True
    length = request.content_length
    if request.mimetype in FORM_TYPES or length is None or length > 2 * len(ONE_CLICK_BODY):
        return False
    return request.get_data(cache=True).strip() == ONE_CLICK_BODY


def client_address() -> str:
    """The peer address; behind a proxy, run gunicorn with --forwarded-allow-ips."""
    return request.remote_addr or "unknown"


def install(app: Flask, blueprint: Blueprint, settings: Settings) -> Limiter:
    limiter = Limiter(
        key_func=client_address,
        storage_uri=settings.redis_url or "memory://",
        key_prefix="suppression-public",
        headers_enabled=False,  # the 429 page sets Retry-After itself
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.limit(
        settings.links.page_rate_limit,
        scope="public-pages",
        exempt_when=is_one_click,
    )(blueprint)
    limiter.limit(
        settings.links.one_click_rate_limit,
        scope="one-click",
        exempt_when=lambda: not is_one_click(),
    )(blueprint)
    limiter.init_app(app)
    app.extensions[EXTENSION] = limiter
    return limiter
