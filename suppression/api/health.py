"""Liveness, readiness and metrics: no key needed."""

from __future__ import annotations

from flask import Response
from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import text

from suppression import metrics, runtime

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
    def get(self) -> tuple[dict[str, str], int]:
        """The database answers."""
        try:
            with runtime.runtime().engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:  # any failure means not ready
            return {"status": "unavailable"}, 503
        return {"status": "ok"}, 200


@blp.route("/metrics")
class Metrics(MethodView):
    @blp.response(200, content_type="text/plain")
    def get(self) -> Response:
        """Prometheus text format."""
        return metrics.render()
