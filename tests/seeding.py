"""Factories that seed the store the way its users do (consents and blocks through
the API, API keys through the service that mints them), and the sync worker's fold
of accepted one-clicks, which tests drive instead of waiting for it."""

from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from werkzeug.test import TestResponse

from suppression.services.staff.api_keys import create_api_key
from suppression.store.models import OneClickIntake
from suppression.worker.one_click_folding import fold_backlog


def api_key(application: Flask, role: str, name: str | None = None) -> dict[str, str]:
    """A new API key of `role` in `application`'s database, as request headers."""
    state = application.extensions["suppression"]
    with state.sessions() as session:
        _key, secret = create_api_key(session, name or f"{role}-key", role, state.clock())
        session.commit()
    return {"Authorization": f"Bearer {secret}"}


def record(
    client: FlaskClient,
    headers: dict[str, str],
    email: str,
    status: str = "opted_out",
    purpose: str = "email_marketing",
    source: str = "test",
    **fields,
) -> TestResponse:
    """POST /v1/consents; the change must be recorded (201)."""
    body = {"email": email, "purpose": purpose, "status": status, "source": source, **fields}
    response = client.post("/v1/consents", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response


def block(
    client: FlaskClient, headers: dict[str, str], email: str, kind: str, **fields
) -> TestResponse:
    """POST /v1/blocks; the block must be recorded (201)."""
    body = {"email": email, "kind": kind, **fields}
    response = client.post("/v1/blocks", json=body, headers=headers)
    assert response.status_code == 201, response.get_json()
    return response


def fold_one_clicks(application: Flask, timeout: float = 20.0) -> None:
    """Fold the one-clicks `application` accepted into the event log, as the sync
    worker does first on each pass, and wait for any its folding thread holds
    (PostgreSQL hands those rows to one folder only), so that the test reads them
    as events."""
    state = application.extensions["suppression"]
    deadline = time.monotonic() + timeout
    while True:
        fold_backlog(state.sessions, state.vault, state.settings)
        with state.sessions() as session:
            pending = session.scalar(select(func.count()).select_from(OneClickIntake))
        if not pending:
            return
        assert time.monotonic() < deadline, f"{pending} one-clicks were never folded"
        time.sleep(0.05)
