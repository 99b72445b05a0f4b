"""Domain errors → the API's one error shape: {code, status, message, errors}.

A database that cannot be reached is mapped here too, for every endpoint: while
it is down or restarting, or while every pooled connection is taken, requests
that need it answer `503` with `Retry-After` (the API in the error shape, pages
with a short HTML page, an RFC 8058 one-click with a short text, as its `200`
is), never `500`. Mailbox providers retry a one-click that got a 503. Nothing
has to be restarted afterwards: a connection found dead is dropped from its pool
(pre-ping, or the error invalidates it) and the next request opens a new one.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy import exc as sql
from werkzeug.exceptions import InternalServerError, ServiceUnavailable

from suppression import web
from suppression.domain.errors import (
    Conflict,
    InvalidInput,
    MalformedInput,
    NotFound,
    SuppressionError,
)
from suppression.web import ratelimit
from suppression.worker.one_click_intake import IntakeNotWritten

logger = logging.getLogger(__name__)

# Connection-level failures: the server is down, restarting, refusing or dropping
# connections (OperationalError; SQLite: a file that cannot be opened, a lock not
# had within the busy timeout), a connection in a bad state (InterfaceError), or no
# pooled connection free within the pool's timeout (TimeoutError).
DATABASE_UNAVAILABLE = (sql.OperationalError, sql.InterfaceError, sql.TimeoutError)
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_MESSAGE = "The service cannot reach its database just now; try again in a few seconds."

STATUS_OF: dict[type[SuppressionError], int] = {
    InvalidInput: 422,
    MalformedInput: 400,
    NotFound: 404,
    Conflict: 409,
}


def error_response(code: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = errors
    response = jsonify(body)
    response.status_code = code
    return response


def install(app: Flask) -> None:
    @app.errorhandler(SuppressionError)
    def domain_error(error: SuppressionError) -> Response:
        code = next((status for kind, status in STATUS_OF.items() if isinstance(error, kind)), 400)
        return error_response(code, error.message, error.errors)

    @app.errorhandler(RecursionError)
    def nested_too_deeply(error: RecursionError) -> Response:
        # The JSON parser recurses per level: a body of 100,000 brackets is bad input.
        if request.is_json and not web.is_page_request():
            return error_response(
                400, "The JSON body is nested too deeply.", {"json": ["Nested too deeply."]}
            )
        raise error

    for kind in DATABASE_UNAVAILABLE:
        app.register_error_handler(kind, database_unavailable)

    @app.errorhandler(IntakeNotWritten)
    def intake_not_written(error: IntakeNotWritten) -> Any:
        # The group commit that held this one-click failed: answered as its cause
        # is (any other cause is an unhandled error: logged, then the 500 page).
        if isinstance(error.__cause__, DATABASE_UNAVAILABLE):
            return database_unavailable(error.__cause__)
        raise error

    @app.errorhandler(500)
    def internal_error(error: Exception) -> Any:
        original = getattr(error, "original_exception", error)
        logger.error("unhandled error", exc_info=original)
        if web.is_page_request():
            return web.html_error(InternalServerError())
        return error_response(500, "The server failed to answer; the error was logged.")


def database_unavailable(error: Exception) -> Response | tuple[str, int, dict[str, str]]:
    """503 with Retry-After, in the form the caller reads."""
    cause = getattr(error, "orig", None) or error
    # The driver's first line (no bound parameter: engines hide them), not the path.
    logger.warning(
        "database unavailable, answered 503: %s: %s",
        type(cause).__name__,
        str(cause).strip().split("\n", 1)[0][:300],
    )
    retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if web.is_page_request():
        if request.method == "POST" and ratelimit.is_one_click():
            text = "The unsubscribe could not be recorded just now; please try again.\n"
            return Response(text, status=503, mimetype="text/plain", headers=retry)
        return web.html_error(
            ServiceUnavailable(UNAVAILABLE_MESSAGE, retry_after=RETRY_AFTER_SECONDS)
        )
    response = error_response(503, UNAVAILABLE_MESSAGE)
    response.headers.update(retry)
    return response
