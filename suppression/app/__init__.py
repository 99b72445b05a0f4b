"""The application factory (the composition root of the HTTP edges): reads like a table
of contents."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import swagger_ui_bundle
from flask import Flask, Response, send_from_directory
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from suppression import api as api_package
from suppression import web
from suppression.api import body_limits, errors
from suppression.app import current, metrics_endpoint, proxies
from suppression.config.settings import Settings
from suppression.connectors.settings import log_warnings
from suppression.observability.logs import configure_logging
from suppression.runtime import Runtime
from suppression.store.schema import utcnow
from suppression.web import public as public_pages
from suppression.web import staff as staff_pages

DOCS_ASSETS = "/docs/assets/"
# templates/ and static/ sit beside the packages, one folder up from this one.
PACKAGE_ROOT = Path(__file__).resolve().parent.parent


def create_app(
    settings: Settings | None = None,
    clock: Callable[[], datetime] = utcnow,
    *,
    engine: Engine | None = None,
    sessions: sessionmaker[Session] | None = None,
) -> Flask:
    """The app on `settings.database_url`; or on `engine` and `sessions` when given
    (the tests' shared engine and sessions held in one connection's transaction)."""
    settings = settings or Settings.from_env()
    app = Flask(__name__, root_path=str(PACKAGE_ROOT), instance_path=str(settings.instance_path))
    configure_logging(settings, app.logger.name)
    log_warnings(settings.destinations)
    app.config.update(
        SECRET_KEY=settings.keys.secret_key,
        MAX_CONTENT_LENGTH=settings.max_content_length,
        API_TITLE="Suppression service",
        API_VERSION="1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        OPENAPI_SWAGGER_UI_URL=DOCS_ASSETS,
    )
    current.install(app, Runtime.build(settings, clock, engine=engine, sessions=sessions))
    api_package.register(api_package.ServiceApi(app), settings.purposes)
    errors.install(app)
    body_limits.install(app, settings.max_json_bytes)
    web.install(app)
    staff_pages.install(app)
    public_pages.install(app)
    metrics_endpoint.install(app)
    _serve_docs_assets(app)
    proxies.install(app, settings)  # last: the outermost layer sees the client first
    return app


def _serve_docs_assets(app: Flask) -> None:
    """Swagger UI from the installed package: /docs needs no CDN."""

    @app.get(DOCS_ASSETS + "<path:filename>")
    def docs_assets(filename: str) -> Response:
        return send_from_directory(swagger_ui_bundle.swagger_ui_path, filename)
