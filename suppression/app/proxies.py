"""The client's real address behind reverse proxies (TRUSTED_PROXY_HOPS).

Behind a proxy the socket's peer is the proxy, so every client would share one
address: one page rate-limit budget, one sign-in throttle, and the proxy's
address as the evidence of every opt-out. Werkzeug's ProxyFix takes the client
from X-Forwarded-For instead, counting `hops` values from the right: each proxy
appends the address it was reached from, so the value the outermost trusted
proxy wrote is the client's, and whatever a client put in front of it is
ignored. With 0 hops (the default) the headers are ignored altogether: a client
that reaches the service directly cannot choose its address.

It rewrites the WSGI environ itself, so everything that reads the client
address sees the same one: `request.remote_addr` (rate limits, the sign-in
throttle, event evidence, the subject access log) and the server's own access
log (gunicorn's `%(h)s`, werkzeug's request lines), which read REMOTE_ADDR
after the application has run.

What is trusted, and why:
- X-Forwarded-For: `hops` values, one per proxy (each appends to the list).
- X-Forwarded-Proto: one value, the last. The proxy that terminates TLS sets it
  and those behind it pass it on; proxies set it rather than append to it, so
  with two hops there is rarely a second value to count. It decides only
  whether the staff cookie is marked Secure where SESSION_COOKIE_SECURE does
  not already (it does in production).
- X-Forwarded-Host, -Port and -Prefix: none. Every link the service mints is
  built from PUBLIC_BASE_URL and its redirects are relative, so nothing needs
  them, and a proxy that passes a client's X-Forwarded-Host on unchanged would
  let the client choose the host the application sees.

A forwarded value that is not an IP address (or a scheme other than http and
https) means the proxies are not what TRUSTED_PROXY_HOPS says; the socket's
peer is kept then, so that no made-up text reaches the evidence or a limit key.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from suppression.config.settings import Settings

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

logger = logging.getLogger(__name__)

SCHEMES = frozenset({"http", "https"})
_ORIGINAL = "werkzeug.proxy_fix.orig"


def install(app: Flask, settings: Settings) -> None:
    """Wrap the app's WSGI callable; call it last, so that it is the outermost
    layer and every other one sees the client's address."""
    hops = settings.trusted_proxy_hops
    if hops == 0:
        return
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        _ForwardedValuesChecked(app.wsgi_app), x_for=hops, x_proto=1
    )


class _ForwardedValuesChecked:
    """Inside ProxyFix: puts the socket's peer (and scheme) back when what the
    headers gave is not an address (or a scheme)."""

    def __init__(self, app: WSGIApplication):
        self.app = app
        self.warned = False

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        original = environ[_ORIGINAL]
        address = environ.get("REMOTE_ADDR")
        if address != original["REMOTE_ADDR"] and not _is_ip(address):
            environ["REMOTE_ADDR"] = original["REMOTE_ADDR"]
            self._warn_once()
        if environ.get("wsgi.url_scheme") not in SCHEMES:
            environ["wsgi.url_scheme"] = original["wsgi.url_scheme"]
            self._warn_once()
        return self.app(environ, start_response)

    def _warn_once(self) -> None:
        # Once per process, and without the value: a client may have written it.
        if not self.warned:
            self.warned = True
            logger.warning(
                "X-Forwarded-For or X-Forwarded-Proto held something that is not an "
                "address or scheme: is TRUSTED_PROXY_HOPS more than the proxies in front?"
            )


def _is_ip(text: str | None) -> bool:
    """An IPv4 or IPv6 address without a zone (`fe80::1%eth0`): what fits the
    45 characters that evidence and the sign-in throttle keep of an address."""
    if not text or "%" in text:
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
