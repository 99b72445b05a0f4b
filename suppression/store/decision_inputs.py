"""Bulk writers and `decision_inputs` (migration 0007).

The database's triggers keep one `decision_inputs` row per subject from
`subjects`, `consent_states` and `blocks`. On PostgreSQL a bulk writer (the
importer) may ask them to stand aside for its own statements and rebuild the rows
of the subjects it touched itself: rows of the subjects it created COPYed in from
what it wrote, the others rebuilt in one set-based statement. Each row is then
written once, not once for every table that changed. The setting is local to the
transaction (and undone with a rolled-back savepoint), so no other writer is
affected. SQLite's row triggers always run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from suppression.store.dialects import (
    binary_copy_dumpers,
    dialect_name,
    driver_cursor,
    id_array_text,
)

# Read by the trigger functions: 'caller' makes them return at once.
SETTING = "suppression.decision_inputs"

_STAND_ASIDE = text("SELECT set_config(:name, :value, true)")
_REBUILD = text(
    """
WITH ids AS (SELECT unnest(CAST(:ids AS bigint[])) AS id)
INSERT INTO decision_inputs AS d (email_index, subject_id, country, country_source,
                                  erased_at, last_purchase_at, last_inquiry_at, blocks, consents)
SELECT s.email_index, s.id, s.country, s.country_source,
       s.erased_at, s.last_purchase_at, s.last_inquiry_at, b.kinds, c.states
FROM subjects s
LEFT JOIN (SELECT subject_id, string_agg(kind, ',' ORDER BY kind) AS kinds FROM blocks
           WHERE is_active AND subject_id IN (SELECT id FROM ids) GROUP BY subject_id) b
       ON b.subject_id = s.id
LEFT JOIN (SELECT subject_id,
                  jsonb_object_agg(purpose, jsonb_build_array(status, changed_at)) AS states
           FROM consent_states WHERE subject_id IN (SELECT id FROM ids) GROUP BY subject_id) c
       ON c.subject_id = s.id
WHERE s.id IN (SELECT id FROM ids)
ON CONFLICT (subject_id) DO UPDATE SET
    email_index = excluded.email_index, country = excluded.country,
    country_source = excluded.country_source, erased_at = excluded.erased_at,
    last_purchase_at = excluded.last_purchase_at, last_inquiry_at = excluded.last_inquiry_at,
    blocks = excluded.blocks, consents = excluded.consents
"""
)


class CallerKept:
    """What a bulk writer owes `decision_inputs` while the triggers stand aside."""

    def __init__(self, active: bool):
        self.active = active  # False: the triggers keep the rows (SQLite)
        self.touched: set[int] = set()  # subjects whose rows are rebuilt from the tables
        self.new: list[tuple[Any, ...]] = []

    def add_new(
        self,
        email_index: bytes,
        subject_id: int,
        country: str | None,
        country_source: int | None,
        states: Iterable[tuple[str, str, datetime]],
    ) -> None:
        """A subject created by the writer, whose consent states it wrote, as
        (purpose, status, changed_at); nothing else of it is stored yet."""
        if self.active:
            self.new.append((email_index, subject_id, country, country_source, _jsonb(states)))


def _jsonb(states: Iterable[tuple[str, str, datetime]]) -> bytes | None:
    """{purpose: [status, changed_at]} in jsonb's binary COPY form (version 1, then
    the text), written out directly: json.dumps was most of an import's cost
    here. Purposes are configured names (letters, digits, '_', '-': config.py)
    and statuses enum values, so nothing needs escaping."""
    body = ", ".join(f'"{p}": ["{status}", "{at.isoformat()}"]' for p, status, at in states)
    return b"\x01{" + body.encode() + b"}" if body else None


_COPY_NEW = "COPY decision_inputs (email_index, subject_id, country, country_source, consents) "
_COPY_NEW += "FROM STDIN (FORMAT BINARY)"
# consents goes as bytes already in jsonb's binary form.
_NEW_TYPES = ("bytea", "int8", "varchar", "int2", "bytea")


def _copy_new(session: Session, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    cursor = driver_cursor(session)
    try:
        binary_copy_dumpers(cursor)
        with cursor.copy(_COPY_NEW) as copy:
            copy.set_types(_NEW_TYPES)
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


@contextmanager
def rebuilt_by_caller(session: Session) -> Iterator[CallerKept]:
    """Inside the block the triggers stand aside; the caller reports what it wrote
    to the CallerKept it is given, and the rows are written on leaving: new
    subjects COPYed in as reported, the touched ones rebuilt from the tables.
    (An exception leaves the transaction to be rolled back, writing nothing.)"""
    active = dialect_name(session) == "postgresql"
    kept = CallerKept(active)
    if not active:
        yield kept
        return
    session.execute(_STAND_ASIDE, {"name": SETTING, "value": "caller"})
    yield kept
    session.execute(_STAND_ASIDE, {"name": SETTING, "value": ""})
    touched = kept.touched
    _copy_new(session, [row for row in kept.new if row[1] not in touched])
    if touched:
        session.execute(_REBUILD, {"ids": id_array_text(sorted(touched))})
