"""The store under concurrency, and what a dump of it reveals."""

import random
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from suppression.domain.policy import ConsentStatus
from suppression.services.consents.recording import EventContext, record_consent
from suppression.services.consents.subjects import ensure_subject
from suppression.store.models import ConsentEvent, ConsentState, Subject


def run_concurrently(count, work):
    barrier = threading.Barrier(count)
    failures = []

    def runner(i):
        try:
            barrier.wait()
            work(i)
        except Exception as exc:  # collected and asserted below
            failures.append(exc)

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []


@pytest.mark.committed  # writers in threads
def test_racing_writers_for_a_new_address_create_one_subject(app, vault):
    sessions = app.extensions["suppression"].sessions

    def create(_i):
        with sessions() as session:
            ensure_subject(session, vault, "new@example.com")
            session.commit()

    run_concurrently(8, create)
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subject)) == 1


@pytest.mark.committed  # writers in threads
def test_concurrent_changes_settle_on_the_newest_occurred_at(app, vault):
    sessions = app.extensions["suppression"].sessions
    base = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [base + timedelta(minutes=i) for i in range(20)]
    random.Random(7).shuffle(moments)
    statuses = {m: random.Random(m.minute).choice(list(ConsentStatus)) for m in moments}

    def change(i):
        moment = moments[i]
        ctx = EventContext(actor="test", source="race", occurred_at=moment, recorded_at=moment)
        with sessions() as session:
            record_consent(
                session, vault, "race@example.com", "email_marketing", statuses[moment], ctx
            )
            session.commit()

    run_concurrently(len(moments), change)
    newest = max(moments)
    with sessions() as session:
        state = session.scalars(select(ConsentState)).one()
        assert state.changed_at == newest
        assert state.status == statuses[newest].value
        assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 20
        assert session.scalar(select(func.count()).select_from(Subject)) == 1


ADDRESSES = [
    "Jane.Doe@Example.COM",
    "hans.mueller@firma.de",
    "li.wei@example.ca",
    "bob+news@example.com",
    "zoë@bücher.de",
]


def test_a_dump_after_a_mixed_workload_holds_no_plaintext_address(app, client, sender, dump):
    for i, address in enumerate(ADDRESSES):
        status = "opted_out" if i % 2 else "opted_in"
        client.post(
            "/v1/consents",
            json={
                "email": address,
                "purpose": "all",
                "status": status,
                "source": "form",
                "country": "US",
            },
            headers=sender,
        )
        client.post("/v1/blocks", json={"email": address, "kind": "hard_bounce"}, headers=sender)
        client.post(
            "/v1/relationships", json={"email": address, "kind": "purchase"}, headers=sender
        )
    client.post(
        "/v1/checks", json={"addresses": [*ADDRESSES, "checked.only@example.org"]}, headers=sender
    )
    dump = dump().lower()
    assert len(dump) > 0
    for address in [*ADDRESSES, "checked.only@example.org"]:
        local = address.split("@")[0].lower()
        for needle in (address.lower(), local, "xn--bcher-kva.de"):
            assert needle.encode() not in dump, needle
            assert needle.encode("utf-16-le") not in dump, needle
