"""Helper processes that decide slices of large check lists on their own connections.

Canonicalising, HMAC-ing, querying and deciding a million addresses is Python
CPU work that one process does at its own speed while the machine's other cores
idle; threads do not help (the GIL). So each web worker that meets a large list
starts, once, a small pool of helper processes and hands them slices of each
chunk; the worker itself only reads the request and writes the answer.

The helpers are not forked from the web worker: they inherit no database
connection, no Flask app, no socket and no lock another thread held. They come
from a fork server (multiprocessing's "forkserver"), a single-threaded process
started once per web worker that imports only the pure domain, the DB-API
checker (services/checks/decisions.py) and the database driver, and forks each
helper from itself: the helpers share those pages with it (psycopg alone is
about 19 MB a process when each imports it anew) and start without importing
anything. Each opens one read connection, kept for the next list. Small lists
never touch the pool (the hand-off costs more than it saves), and a helper that
fails only costs speed: its slice is decided again in the worker's own process,
on the request's session.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

from suppression.services.checks.decisions import DECISION_CODES, SliceChecker, StoreReader
from suppression.services.checks.slices import SliceJob
from suppression.store.raw_connections import Connect

logger = logging.getLogger(__name__)


# --- in the helper process ------------------------------------------------------

_connections: dict[Connect, Any] = {}


def decide_slice(job: SliceJob) -> tuple[bytes, list[bytes | None] | None]:
    """Runs in a helper: one byte per address (check_decisions.DECISIONS) and, when
    asked, the unkeyed SHA-256 of each address."""
    connection = _connections.get(job.connect)
    if connection is None:
        connection = _connections[job.connect] = job.connect.open()
    try:
        checker = SliceChecker(
            StoreReader(
                connection,
                job.connect.dialect,
                relationships=bool(job.policy.soft_opt_in_countries),
            ),
            job.index_key,
            job.policy,
            job.purpose,
            job.now,
        )
        decisions, digests = checker.decide(job.raws, job.hints, job.with_sha256, job.pending)
        connection.rollback()  # a read; end it so the next list sees a fresh snapshot
    except BaseException:
        _connections.pop(job.connect, None)  # the next job opens a fresh one
        with contextlib.suppress(Exception):
            connection.close()
        raise
    return bytes(DECISION_CODES[decision] for decision in decisions), digests


# --- in the web worker ----------------------------------------------------------

# What the fork server imports once, for its helpers to share.
_PRELOAD = {
    "sqlite": [__name__],
    "postgresql": [__name__, "psycopg"],
}


class HelperPool:
    """`processes` helpers from the fork server, started on first use and kept (one per
    Runtime, so one per web process)."""

    def __init__(self, processes: int):
        self.processes = processes
        self._executor: ProcessPoolExecutor | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()

    def submit(self, job: SliceJob) -> Future[tuple[bytes, list[bytes | None] | None]]:
        with self._lock:
            if self._pid != os.getpid():  # a forked child never shares its parent's helpers
                self._executor, self._pid = None, os.getpid()
            if self._executor is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(_PRELOAD[job.connect.dialect])
                self._executor = ProcessPoolExecutor(self.processes, mp_context=context)
            executor = self._executor
        return executor.submit(decide_slice, job)

    def reset(self) -> None:
        """Forget a broken pool; the next large list starts a new one."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)
