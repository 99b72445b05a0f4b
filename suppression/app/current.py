"""What a request needs from the app: its session, settings, keys and clock.

Views and pages call these instead of reaching into `current_app` themselves,
so that services stay free of Flask.
"""

from __future__ import annotations

from datetime import datetime

from flask import Flask, current_app, g
from sqlalchemy.orm import Session

from suppression.config.settings import Settings
from suppression.domain.vault import AddressVault
from suppression.runtime import Runtime
from suppression.store.engines import read_only_session

EXTENSION = "suppression"


def of(app: Flask) -> Runtime:
    return app.extensions[EXTENSION]


def runtime() -> Runtime:
    return of(current_app)


def settings() -> Settings:
    return runtime().settings


def vault() -> AddressVault:
    return runtime().vault


def now() -> datetime:
    return runtime().clock()


def db_session() -> Session:
    """The request's session; rolled back and closed at teardown unless committed."""
    if "db_session" not in g:
        g.db_session = runtime().sessions()
    return g.db_session


def read_session() -> Session:
    """A session for a long read (a check) that never takes SQLite's write lock."""
    if "db_read_session" not in g:
        g.db_read_session = read_only_session(runtime().sessions)
    return g.db_read_session


def close_sessions() -> None:
    """End the request's sessions now (also done at teardown)."""
    for name in ("db_session", "db_read_session"):
        session = g.pop(name, None)
        if session is not None:
            session.close()


def install(app: Flask, state: Runtime) -> None:
    app.extensions[EXTENSION] = state

    @app.teardown_appcontext
    def end_sessions(_exc: BaseException | None) -> None:
        close_sessions()
