"""Group commit of one-clicks (worker/one_click_intake.py): the clicks that arrive
while a commit is in flight share the next commit; each is answered only after
the commit that holds its row, and a failed commit fails every click it held."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from suppression.domain.policy import ALL_PURPOSES
from suppression.services.consents.events import EventContext
from suppression.services.consents.intake import one_click_row, pending_opt_outs
from suppression.store.models import ConsentEvent, OneClickIntake
from suppression.worker.one_click_intake import IntakeNotWritten, IntakeWriter

# Real commits, from several threads (and on PostgreSQL the intake's own engine).
pytestmark = pytest.mark.committed

ONE_CLICK = {"List-Unsubscribe": "One-Click"}
WAIT = 10.0  # seconds: a bound on waiting for a thread, never a timing assertion


@pytest.fixture
def runtime_state(app):
    return app.extensions["suppression"]


def row(runtime_state, clock, address: str) -> dict:
    ctx = EventContext(
        actor="recipient",
        source="one_click",
        occurred_at=clock(),
        recorded_at=clock(),
        ip="192.0.2.7",
        user_agent="Mail/1.0",
    )
    return one_click_row(
        runtime_state.vault, runtime_state.settings.policy, address, ALL_PURPOSES, ctx
    )


class GatedSessions:
    """The runtime's intake sessions, with the first commit held until released
    (so that other clicks queue behind it) and chosen commits made to fail."""

    def __init__(self, sessions, fail_on: tuple[int, ...] = ()):
        self.sessions = sessions
        self.fail_on = fail_on
        self.opened = 0
        self.first_holding = threading.Event()
        self.release = threading.Event()

    @contextmanager
    def __call__(self):
        self.opened += 1
        number = self.opened
        if number == 1:
            self.first_holding.set()
            assert self.release.wait(WAIT)
        if number in self.fail_on:
            raise OperationalError("INSERT", {}, ConnectionRefusedError("server closed"))
        with self.sessions() as session:
            yield session


def intake_sessions(runtime_state):
    engine = runtime_state.intake_engine
    return (lambda: runtime_state.sessions(bind=engine)) if engine else runtime_state.sessions


def writing(writer: IntakeWriter, rows: list[dict]) -> tuple[list[threading.Thread], dict]:
    """One thread per row, each writing its row; what each raised, by row number."""
    raised: dict[int, BaseException | None] = {}

    def write(number: int, row: dict) -> None:
        try:
            writer.write(row)
        except BaseException as error:
            raised[number] = error
        else:
            raised[number] = None

    threads = [
        threading.Thread(target=write, args=(number, row)) for number, row in enumerate(rows)
    ]
    return threads, raised


def wait_until_queued(writer: IntakeWriter, count: int) -> None:
    deadline = time.monotonic() + WAIT
    while writer.queued < count:
        assert time.monotonic() < deadline, f"{writer.queued} of {count} clicks queued"
        time.sleep(0.005)


def stored(session) -> int:
    found = session.scalar(select(func.count()).select_from(OneClickIntake))
    session.rollback()
    return found


def test_clicks_arriving_during_a_commit_share_the_next_one(runtime_state, session, clock):
    gate = GatedSessions(intake_sessions(runtime_state))
    writer = IntakeWriter(gate)
    rows = [row(runtime_state, clock, f"person{n}@example.com") for n in range(5)]
    threads, raised = writing(writer, rows)
    threads[0].start()
    assert gate.first_holding.wait(WAIT)  # the first click's commit is in flight
    for thread in threads[1:]:
        thread.start()
    wait_until_queued(writer, 4)
    assert stored(session) == 0
    assert raised == {}
    gate.release.set()
    for thread in threads:
        thread.join(WAIT)
    assert raised == dict.fromkeys(range(5))
    assert (writer.groups, writer.rows) == (2, 5)  # the four waiting ones in one INSERT
    assert stored(session) == 5
    assert set(pending_opt_outs(session)) == {r["email_index"] for r in rows}


def test_a_failed_commit_fails_every_click_it_held_and_the_next_click_is_written(
    runtime_state, session, clock
):
    gate = GatedSessions(intake_sessions(runtime_state), fail_on=(2,))
    writer = IntakeWriter(gate)
    rows = [row(runtime_state, clock, f"person{n}@example.com") for n in range(4)]
    threads, raised = writing(writer, rows)
    threads[0].start()
    assert gate.first_holding.wait(WAIT)
    for thread in threads[1:]:
        thread.start()
    wait_until_queued(writer, 3)
    gate.release.set()
    for thread in threads:
        thread.join(WAIT)
        assert not thread.is_alive()  # nobody waits for a row that left the queue
    assert raised[0] is None
    for number in (1, 2, 3):
        assert isinstance(raised[number], IntakeNotWritten)
        assert isinstance(raised[number].__cause__, OperationalError)
    assert stored(session) == 1
    writer.write(row(runtime_state, clock, "later@example.com"))  # the writer goes on
    assert stored(session) == 2


def test_concurrent_one_clicks_over_http_are_all_recorded(app, runtime_state, session, sender):
    paths = []
    for n in range(12):
        answer = app.test_client().post(
            "/v1/unsubscribe-links", json={"email": f"person{n}@example.com"}, headers=sender
        )
        assert answer.status_code == 200
        paths.append(urlsplit(answer.get_json()["url"]).path)
    statuses: list[int] = []
    start = threading.Barrier(len(paths))

    def click(path: str) -> None:
        client = app.test_client()
        start.wait(WAIT)
        statuses.append(client.post(path, data=ONE_CLICK).status_code)

    threads = [threading.Thread(target=click, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert statuses == [200] * len(paths)
    writer = runtime_state.intake
    assert writer.rows == len(paths)
    assert 1 <= writer.groups <= len(paths)
    # The background fold moves rows from the intake to the chain in one transaction.
    pending_or_folded = select(
        select(func.count()).select_from(OneClickIntake).scalar_subquery()
        + select(func.count())
        .select_from(ConsentEvent)
        .where(ConsentEvent.source == "one_click")
        .scalar_subquery()
    )
    assert session.scalar(pending_or_folded) == len(paths)


def test_a_database_failure_of_the_group_answers_the_one_click_503(
    app, runtime_state, client, sender, monkeypatch
):
    answer = client.post(
        "/v1/unsubscribe-links", json={"email": "jane.doe@example.com"}, headers=sender
    )
    path = urlsplit(answer.get_json()["url"]).path
    gate = GatedSessions(intake_sessions(runtime_state), fail_on=(1,))
    gate.release.set()
    monkeypatch.setattr(runtime_state, "intake", IntakeWriter(gate))
    answered = client.post(path, data=ONE_CLICK)
    assert answered.status_code == 503
    assert answered.headers["Retry-After"] == "5"
    assert "could not be recorded" in answered.get_data(as_text=True)
