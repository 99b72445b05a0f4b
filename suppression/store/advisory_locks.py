"""PostgreSQL's advisory locks, standing for live outbox workers: a claiming
connection holds its worker's lock until it closes (services/destinations/lease.py
reads who still holds one). SQLite has none: rows wait for their lease there."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from suppression.store.dialects import dialect_name

# Advisory locks on a bigint key: high half in classid, low half in objid, objsubid 1.
_HELD_KEYS = text(
    "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
    "WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
)


def liveness_key(worker: str) -> int:
    """The advisory lock key that stands for a worker: 63 bits of its name's SHA-256."""
    return int.from_bytes(hashlib.sha256(worker.encode()).digest()[:8], "big") >> 1


_LIVENESS = "suppression_outbox_liveness"  # in the DBAPI connection's info: the worker


def hold_liveness(session: Session, worker: str) -> None:
    """PostgreSQL: the connection that claims for `worker` holds a shared
    session-level advisory lock on its key until the connection closes.

    While any such connection is open the worker counts as alive and its rows
    wait out their lease; when the worker dies (SIGKILL, a lost host) the server
    drops its connections and the locks with them, and `release_dead_claims`
    puts its rows back at once. The lock outlives transactions; `info` stays
    with the pooled connection, so it is taken once per connection.

    A connection stands for one worker at a time: claiming for another worker
    (the API builds one per "sync now" request) moves its lock, so locks never
    pile up on long-lived pooled connections. A worker whose every claiming
    connection moved on looks gone, and its rows may be taken before its lease
    ends: a second push of the same subjects, never a lost one."""
    if dialect_name(session) != "postgresql":
        return
    connection = session.connection()
    held = connection.info.get(_LIVENESS)
    if held == worker:
        return
    if held is not None:
        connection.execute(select(func.pg_advisory_unlock_shared(liveness_key(held))))
    connection.execute(select(func.pg_advisory_lock_shared(liveness_key(worker))))
    connection.info[_LIVENESS] = worker


def held_advisory_keys(session: Session) -> set[int] | None:
    """The advisory lock keys some connection holds now; None on SQLite."""
    if dialect_name(session) != "postgresql":
        return None
    return set(session.scalars(_HELD_KEYS))
