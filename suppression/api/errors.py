"""Domain errors → the API's one error shape: {code, status, message, errors}."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.exceptions import InternalServerError

from suppression import web
from suppression.errors import Conflict, InvalidInput, MalformedInput, NotFound, SuppressionError

logger = logging.getLogger(__name__)

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

    @app.errorhandler(500)
    def internal_error(error: Exception) -> Any:
        original = getattr(error, "original_exception", error)
        logger.error("unhandled error", exc_info=original)
        if web.is_page_request():
            return web.html_error(InternalServerError())
        return error_response(500, "The server failed to answer; the error was logged.")
