"""Liveness, readiness and metrics: no API key needed (/metrics takes its own
token when METRICS_TOKEN is set)."""

from __future__ import annotations

import hmac

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from sqlalchemy import text

from suppression.api.errors import RETRY_AFTER_SECONDS
from suppression.app import current, metrics_endpoint

blp = Blueprint("health", __name__, description="Health and metrics")


@blp.route("/healthz")
class Health(MethodView):
    @blp.response(200)
    def get(self) -> dict[str, str]:
        """The process is alive."""
        return {"status": "ok"}


@blp.route("/readyz")
class Ready(MethodView):
    @blp.response(200)
    @blp.alt_response(503, description="The database does not answer")
    def get(self) -> tuple[dict[str, str], int] | tuple[dict[str, str], int, dict[str, str]]:
        """The database answers."""
        try:
            with current.runtime().engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any failure means not ready
            return {"status": "unavailable"}, 503, {"Retry-After": str(RETRY_AFTER_SECONDS)}
        return {"status": "ok"}, 200


@blp.route("/metrics")
class Metrics(MethodView):
    # Open, or (METRICS_TOKEN set) the metrics token: the API keys do not open it.
    @blp.doc(security=[{}, {"metricsToken": []}])
    @blp.response(200, content_type="text/plain")
    @blp.alt_response(
        401, response="DEFAULT_ERROR", description="METRICS_TOKEN is set and was not sent"
    )
    def get(self) -> Response:
        """Prometheus text format. With METRICS_TOKEN set, send
        `Authorization: Bearer <METRICS_TOKEN>`."""
        _require_metrics_token()
        return metrics_endpoint.render()


def _require_metrics_token() -> None:
    token = current.settings().metrics_token
    if token is None:
        return
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    # Compared in constant time, as bytes: a header may hold any Latin-1 text.
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        presented.strip().encode("utf-8"), token.encode("utf-8")
    ):
        abort(
            401,
            message="/metrics needs its token: Authorization: Bearer <METRICS_TOKEN>.",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
