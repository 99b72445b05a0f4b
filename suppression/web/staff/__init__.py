"""The staff pages under /admin/: sign-in, search one address, its subject page
and changes, the dashboard, checking a send list, and (admins) the access log and staff accounts."""

from __future__ import annotations

from flask import Flask

from suppression.web.staff import (
    admin,
    auth,
    dashboard,
    destinations,
    list_checks,
    rights,
    subjects,
)
from suppression.web.staff.blueprint import bp

__all__ = [
    "admin",
    "auth",
    "dashboard",
    "destinations",
    "install",
    "list_checks",
    "rights",
    "subjects",
]


def install(app: Flask) -> None:
    auth.configure_sessions(app)
    app.register_blueprint(bp)
