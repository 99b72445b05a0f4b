"""50 concurrent opt-ins and opt-outs for one address, through HTTP on a live
threaded server: the newest occurred_at wins, one subject, 50 events, and the
tamper-evident chain still verifies."""

from __future__ import annotations

import json
import random
import threading
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from suppression.services.consents.audit import verify_chain
from suppression.store.models import ConsentEvent, ConsentState, Subject

# A threaded server answers on connections of its own.
pytestmark = pytest.mark.committed

REQUESTS = 50


@pytest.fixture
def server(app) -> Iterator[str]:
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


def _post(url: str, headers: dict[str, str], body: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={**headers, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        return response.status


def test_fifty_concurrent_changes_leave_the_newest_one(server, staff, session, clock, vault):
    rng = random.Random(7)
    changes = [
        {
            "email": "Race.Condition@Example.com",
            "purpose": "email_marketing",
            "status": rng.choice(["opted_in", "opted_out"]),
            "source": "concurrency_test",
            # Staff with evidence may turn an opt-out back (a sender key may not: 409).
            "evidence": {"ticket": f"T-{minutes}"},
            "occurred_at": (clock() - timedelta(minutes=minutes)).isoformat(),
        }
        for minutes in range(1, REQUESTS + 1)
    ]
    newest = changes[0]["status"]
    rng.shuffle(changes)  # arrival order has nothing to do with occurred_at order
    start = threading.Barrier(REQUESTS)

    def send(body: dict) -> int:
        start.wait(timeout=30)  # all 50 go at once
        return _post(f"{server}/v1/consents", staff, body)

    with ThreadPoolExecutor(max_workers=REQUESTS) as pool:
        statuses = list(pool.map(send, changes))

    assert statuses == [201] * REQUESTS
    assert session.scalar(select(func.count(Subject.id))) == 1
    assert session.scalar(select(func.count(ConsentEvent.id))) == REQUESTS
    state = session.scalars(select(ConsentState)).all()
    assert [(s.purpose, s.status) for s in state] == [("email_marketing", newest)]
    assert verify_chain(session, vault).intact
