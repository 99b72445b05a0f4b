"""Server-rendered pages: the public unsubscribe and preference pages and the
staff pages. Plain HTML and CSS, no external assets, no JavaScript needed."""

from __future__ import annotations

from flask import Flask, Response, render_template, request
from werkzeug.exceptions import HTTPException

# Paths that answer people with HTML rather than machines with JSON.
PAGE_PREFIXES = ("/u/", "/preferences/", "/confirm/", "/admin")

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)


def is_page_request() -> bool:
    return request.path.startswith(PAGE_PREFIXES)


def install(app: Flask) -> None:
    @app.after_request
    def security_headers(response: Response) -> Response:
        if response.mimetype == "text/html":
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
            # Tokens live in page URLs: never send them on to another site.
            response.headers.setdefault("Referrer-Policy", "no-referrer")
        if is_page_request():
            response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response


def html_error(error: HTTPException) -> tuple[str, int, dict[str, str]]:
    """The HTML form of an HTTP error, for the pages."""
    code = error.code or 500
    # Under /admin/ the staff layout, so a signed-in person keeps the navigation.
    template = "staff/error.html" if request.path.startswith("/admin") else "error.html"
    page = render_template(template, code=code, name=error.name, description=error.description)
    return page, code, error_headers(error)


def error_headers(error: HTTPException) -> dict[str, str]:
    """The headers werkzeug gives an error besides its body's type: a 405's `Allow`,
    a 401's `WWW-Authenticate`."""
    return {name: value for name, value in error.get_headers() if name.lower() != "content-type"}
