"""Group commit of one-click intake rows: the clicks a web process receives while
one commit is in flight are written together by the next, in one INSERT.

Why: a click's whole work is one durable INSERT, and on PostgreSQL the commit is
most of it: the server's CPU per click falls from ~210 to ~60 µs and the client's
from ~190 to ~65 µs when four rows share a commit (benchmarks/load.py and
docs/benchmarks.md). No click waits for others to arrive: a request adds its row,
then takes the write lock; whoever holds it writes every row waiting at that
moment, its own among them. A request whose row a previous holder wrote returns
as soon as it gets the lock. Every request answers only after the commit that
holds its row, so nothing answered is lost; if that commit fails, every request
of the group fails with it (`IntakeNotWritten`) and none is answered as done.

One writer per process (held by the Runtime); no thread of its own, so nothing
to start after a fork or stop at exit.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from suppression.services.consents.intake import accept_one_clicks

logger = logging.getLogger(__name__)

# Rows in one INSERT at most: a process has a few threads, so a group is small;
# the cap only bounds one statement if a process ever runs many more.
MAX_GROUP = 200


class IntakeNotWritten(Exception):
    """The commit that held this click's row failed; the click was not recorded."""


@dataclass(eq=False)
class _Waiting:
    row: dict[str, Any]
    done: bool = False
    error: BaseException | None = None


class IntakeWriter:
    """Writes intake rows from many request threads, a group per commit."""

    def __init__(self, sessions: Callable[[], AbstractContextManager[Session]]):
        self._sessions = sessions
        self._waiting: list[_Waiting] = []
        self._waiting_lock = threading.Lock()  # held for a list append or swap only
        self._write_lock = threading.Lock()  # held for a group's INSERT and commit
        self.groups = 0  # commits made (the rows / groups ratio is the grouping)
        self.rows = 0

    @property
    def queued(self) -> int:
        """Rows waiting for a commit to take them."""
        return len(self._waiting)

    def write(self, row: dict[str, Any]) -> None:
        """Return once `row` is committed; IntakeNotWritten if its commit failed."""
        waiting = _Waiting(row)
        with self._waiting_lock:
            self._waiting.append(waiting)
        with self._write_lock:
            while not waiting.done:
                with self._waiting_lock:
                    group = self._waiting[:MAX_GROUP]
                    del self._waiting[:MAX_GROUP]
                self._write_group(group)
        if waiting.error is not None:
            raise IntakeNotWritten("the one-click intake row was not written") from waiting.error

    def _write_group(self, group: Sequence[_Waiting]) -> None:
        rows = [waiting.row for waiting in group]
        try:
            self._insert(rows)
        except BaseException as failure:
            # Each request of the group answers with it; none waits for a row that
            # left the queue (a SystemExit in the holder's thread included).
            for waiting in group:
                waiting.error, waiting.done = failure, True
            if not isinstance(failure, Exception):
                raise
            return
        self.groups += 1
        self.rows += len(rows)
        for waiting in group:
            waiting.done = True

    def _insert(self, rows: list[dict[str, Any]]) -> None:
        try:
            self._commit(rows)
        except DBAPIError as error:
            # A pooled connection the server dropped (a restart, a failover): the pool
            # has been emptied; once more on a fresh one. The rows were not written,
            # or (the answer to the commit lost) are written twice and each pair folds
            # into one event.
            if not error.connection_invalidated:
                raise
            logger.warning("intake connection lost; sending %d unsubscribes again", len(rows))
            self._commit(rows)

    def _commit(self, rows: list[dict[str, Any]]) -> None:
        with self._sessions() as session:
            accept_one_clicks(session, rows)
            session.commit()
