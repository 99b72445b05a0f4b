"""Bulk-building the store: the migrated schema, filled straight through the DBAPI.

Indexes and sealed addresses come from the same AddressVault the service builds
from the instance's keys, so the server finds what was written here.
SQLite is filled with executemany, PostgreSQL with binary COPY.

No consent_events rows are written: the event log is a tamper-evident hash chain
(domain/chain.py) that checks never read. The state and block rows carry the id
that their event would have had (event_id has no foreign key).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

import psycopg

from benchmarks.dataset import PURPOSE, Store
from suppression.domain.vault import AddressVault
from suppression.store import engines as database

# What the store records per kind: consents (purpose, status, days ago),
# blocks (kind, active, days ago), purchase (days ago), declared country.
EM = PURPOSE
KIND_FACTS: dict[str, dict[str, Any]] = {
    "opted_in": {"consents": [(EM, "opted_in", 400)]},
    "opted_in_hint_us": {"consents": [(EM, "opted_in", 200)], "hint": "US"},
    "customer": {"purchase": 100},
    "opted_out": {"consents": [(EM, "opted_out", 30)]},
    "opted_out_all": {"consents": [("all", "opted_out", 30)]},
    "eea_domain": {"consents": [(EM, "opted_in", 300)]},
    "eea_declared": {"consents": [(EM, "opted_in", 300)]},
    "optin_country": {},
    "optin_country_consented": {"consents": [(EM, "opted_in", 100)]},
    "newer_purpose_in": {"consents": [("all", "opted_out", 300), (EM, "opted_in", 10)]},
    "newer_all_out": {"consents": [(EM, "opted_in", 300), ("all", "opted_out", 10)]},
    "complaint": {"consents": [(EM, "opted_in", 500)], "blocks": [("complaint", True, 20)]},
    "hard_bounce": {"consents": [(EM, "opted_in", 500)], "blocks": [("hard_bounce", True, 20)]},
    "restriction": {"blocks": [("restriction", True, 20)]},
    "restriction_lifted": {"blocks": [("restriction", False, 5)]},
    "multi": {
        "consents": [("all", "opted_out", 15)],
        "blocks": [("complaint", True, 20), ("hard_bounce", True, 25)],
    },
    "erased": {"erased": 50},
    "idn": {"consents": [(EM, "opted_in", 100)]},
}
SOURCE = "benchmark"

SUBJECT_COLUMNS = (
    "id",
    "email_index",
    "email_sealed",
    "country",
    "country_source",
    "country_changed_at",
    "last_purchase_at",
    "last_inquiry_at",
    "erased_at",
    "erase_reason",
    "erasure_status",
    "created_at",
)
SUBJECT_TYPES = (
    "int8",
    "bytea",
    "bytea",
    "text",
    "int2",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "timestamptz",
    "text",
    "text",
    "timestamptz",
)
STATE_COLUMNS = ("subject_id", "purpose", "status", "changed_at", "source", "event_id")
STATE_TYPES = ("int8", "text", "text", "timestamptz", "text", "int8")
BLOCK_COLUMNS = ("subject_id", "kind", "is_active", "changed_at", "source", "event_id")
BLOCK_TYPES = ("int8", "text", "bool", "timestamptz", "text", "int8")


class Rows:
    """The rows of all four tables, generated from the store's kinds."""

    def __init__(self, store: Store, indexes: Sequence[bytes], sealed: Sequence[bytes | None]):
        self.store = store
        self.indexes = indexes
        self.sealed = sealed
        self.events = 0  # events that the rows stand for (not written)
        self.states: list[tuple[Any, ...]] = []
        self.blocks: list[tuple[Any, ...]] = []
        self._times: dict[int, datetime] = {}
        self._plan()

    def at(self, days: int, position: int = 0) -> datetime:
        """`days` ago, less a per-subject offset under a day: every subject's times differ."""
        time = self._times.get(days)
        if time is None:
            time = self._times[days] = self.store.built_at - timedelta(days=days, hours=1)
        return time - timedelta(seconds=position * 7919 % 80_000)

    def _event(self) -> int:
        self.events += 1
        return self.events

    def _plan(self) -> None:
        for position, kind in enumerate(self.store.kinds):
            subject_id = position + 1
            facts = KIND_FACTS[kind]
            declared = self.store.declared.get(position)
            if declared is not None:
                self._event()  # country_set
            for purpose, status, days in facts.get("consents", ()):
                event_id = self._event()
                self.states.append(
                    (subject_id, purpose, status, self.at(days, position), SOURCE, event_id)
                )
            for block, active, days in facts.get("blocks", ()):
                if not active:
                    self._event()  # the restriction that was lifted
                event_id = self._event()
                self.blocks.append(
                    (subject_id, block, active, self.at(days, position), SOURCE, event_id)
                )
            if "purchase" in facts:
                self._event()

    def subjects(self) -> Iterator[tuple[Any, ...]]:
        store = self.store
        for position, kind in enumerate(store.kinds):
            facts = KIND_FACTS[kind]
            declared = store.declared.get(position)
            if declared is not None:
                country, source, changed = declared, 3, self.at(700, position)
            elif "hint" in facts:
                country, source, changed = facts["hint"], 2, self.at(200, position)
            else:
                country = source = changed = None
            purchase = self.at(facts["purchase"], position) if "purchase" in facts else None
            erased = self.at(facts["erased"], position) if "erased" in facts else None
            yield (
                position + 1,
                self.indexes[position],
                self.sealed[position],
                country,
                source,
                changed,
                purchase,
                None,
                erased,
                "request" if erased else None,
                "done" if erased else None,
                self.at(800, position),
            )


def seal_store(store: Store, vault: AddressVault) -> tuple[list[bytes], list[bytes | None]]:
    index, seal = vault.index, vault.seal
    indexes = [index(a) for a in store.addresses]
    sealed = [
        None if kind == "erased" else seal(address)
        for address, kind in zip(store.addresses, store.kinds, strict=True)
    ]
    return indexes, sealed


def _sqlite_time(value: Any) -> Any:
    # SQLAlchemy's SQLite DateTime storage format, naive UTC.
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def _sqlite_rows(rows: Iterator[tuple[Any, ...]] | list[tuple[Any, ...]]) -> Iterator[Any]:
    for row in rows:
        yield [
            _sqlite_time(v) if isinstance(v, datetime) else int(v) if isinstance(v, bool) else v
            for v in row
        ]


def _insert_sql(table: str, columns: Sequence[str]) -> str:
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def build_sqlite(url: str, path: str, rows: Rows) -> dict[str, int]:
    database.upgrade(url)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA synchronous=OFF")
        connection.execute("BEGIN")
        connection.executemany(
            _insert_sql("subjects", SUBJECT_COLUMNS), _sqlite_rows(rows.subjects())
        )
        connection.executemany(
            _insert_sql("consent_states", STATE_COLUMNS), _sqlite_rows(rows.states)
        )
        connection.executemany(_insert_sql("blocks", BLOCK_COLUMNS), _sqlite_rows(rows.blocks))
        connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return _counts(connection.cursor())
    finally:
        connection.close()


def recreate_postgresql(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def postgresql_settings(admin_url: str) -> dict[str, str]:
    """The server settings that decide how much of the store stays in its buffers."""
    names = ("server_version", "shared_buffers", "effective_cache_size", "work_mem")
    with psycopg.connect(admin_url, autocommit=True) as connection:
        return {name: str(connection.execute(f"SHOW {name}").fetchone()[0]) for name in names}


def drop_postgresql(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _copy(cursor: Any, table: str, columns: Sequence[str], types: Sequence[str], rows: Any) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(types))
        for row in rows:
            copy.write_row(row)


def build_postgresql(url: str, dsn: str, rows: Rows) -> dict[str, int]:
    """ANALYZE at the end: what autovacuum would do within a minute of a bulk load."""
    database.upgrade(url)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        _copy(cursor, "subjects", SUBJECT_COLUMNS, SUBJECT_TYPES, rows.subjects())
        _copy(cursor, "consent_states", STATE_COLUMNS, STATE_TYPES, rows.states)
        _copy(cursor, "blocks", BLOCK_COLUMNS, BLOCK_TYPES, rows.blocks)
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('subjects', 'id'), "
            "(SELECT max(id) FROM subjects))"
        )
        connection.commit()
        connection.autocommit = True
        cursor.execute("VACUUM ANALYZE")
        return _counts(cursor)


def _counts(cursor: Any) -> dict[str, int]:
    counts = {}
    for table in ("subjects", "consent_states", "blocks"):
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cursor.fetchone()[0]
    return counts
