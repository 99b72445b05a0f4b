"""ONE_CLICK_FOLD=worker: a web process records one-clicks and answers, and folds
nothing itself; the sync worker's pass folds them, and readers of one person fold
that person's rows first, as in every mode."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from suppression.config.settings import LinkSettings
from suppression.store.models import ConsentEvent, OneClickIntake
from suppression.worker.destination_sync import DestinationSync

pytestmark = pytest.mark.committed  # the worker opens sessions of its own

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def settings(make_settings):
    links = LinkSettings(page_rate_limit="100000 per minute", one_click_fold="worker")
    return replace(make_settings(), public_base_url="https://optout.example.com", links=links)


def count(session, model) -> int:
    found = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return found


def one_click(client, sender, address: str) -> None:
    link = client.post("/v1/unsubscribe-links", json={"email": address}, headers=sender)
    answer = client.post(urlsplit(link.get_json()["url"]).path, data=ONE_CLICK)
    assert answer.status_code == 200


def test_the_web_process_records_and_the_worker_pass_folds(app, client, sender, session):
    runtime = app.extensions["suppression"]
    one_click(client, sender, "jane.doe@example.com")
    one_click(client, sender, "john.roe@example.com")
    assert runtime.folder._thread is None  # no fold thread was started in this process
    assert count(session, OneClickIntake) == 2
    assert count(session, ConsentEvent) == 0
    worker = DestinationSync(runtime.sessions, runtime.vault, runtime.settings)
    try:
        worker.run_pass()  # no destination is enabled here: the pass folds all the same
    finally:
        worker.close()
    assert count(session, OneClickIntake) == 0
    assert count(session, ConsentEvent) == 2


def test_a_lookup_still_folds_the_persons_click_first(client, sender, make_key, session):
    one_click(client, sender, "jane.doe@example.com")
    found = client.post(
        "/v1/subjects/lookup", json={"email": "jane.doe@example.com"}, headers=make_key("admin")
    )
    assert found.status_code == 200
    assert [e["action"] for e in found.get_json()["events"]] == ["opted_out"]
    assert count(session, OneClickIntake) == 0
