"""Limits on JSON request bodies, apart from the CSV uploads' MAX_CONTENT_LENGTH.

A JSON body parsed whole becomes a tree of Python objects many times its size:
sixty megabytes of `[],` grow to gigabytes. JSON bodies therefore have their own
byte limit (MAX_JSON_BYTES, lower than the 256 MiB a CSV list may take), and a
body parsed whole has a budget of values, counted on its bytes before it is
parsed. The one JSON body that may be large, a check list, is read as a stream
(api/check_lists.py) and never parsed whole.
"""

from __future__ import annotations

from typing import IO, Any, cast

from flask import Flask, Request, current_app, request
from werkzeug.exceptions import RequestEntityTooLarge

from suppression.api.sealed_spool import SealedUpload

# The JSON values a body parsed whole may hold: a batch of 10,000 block events
# is about 70,000. Each `[`, `{` and `,` opens at most one value.
MAX_JSON_VALUES = 1_000_000
MAX_JSON_BYTES = "MAX_JSON_BYTES"  # the app.config key


class ServiceRequest(Request):
    """A request whose JSON body is refused (413) past the value budget."""

    _json_budget_checked = False

    def get_data(self, *args: Any, **kwargs: Any) -> Any:
        data = super().get_data(*args, **kwargs)
        if self.is_json and not self._json_budget_checked:
            self._json_budget_checked = True
            body = data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")
            if values_in(body) > MAX_JSON_VALUES:
                raise RequestEntityTooLarge(
                    f"The JSON body holds more than {MAX_JSON_VALUES:,} values."
                )
        return data

    def _get_file_stream(
        self,
        total_content_length: int | None,
        content_type: str | None,
        filename: str | None = None,
        content_length: int | None = None,
    ) -> IO[bytes]:
        """A file part of a form (a staff page's send list) is held sealed, never
        as plain text in a temporary file (api/sealed_spool.py)."""
        return cast(IO[bytes], SealedUpload())


def values_in(body: bytes) -> int:
    """An upper bound of the values a JSON text holds, without parsing it."""
    return body.count(b",") + body.count(b"[") + body.count(b"{")


def install(app: Flask, max_json_bytes: int) -> None:
    app.request_class = ServiceRequest
    app.config[MAX_JSON_BYTES] = max_json_bytes

    @app.before_request
    def limit_json_bodies() -> None:
        if request.is_json:
            limit = current_app.config[MAX_JSON_BYTES]
            overall = request.max_content_length
            request.max_content_length = limit if overall is None else min(limit, overall)
