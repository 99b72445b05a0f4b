"""Pre-send checks: whole lists against the store in a few set queries per chunk.

One pass canonicalises and indexes each chunk, one query per chunk fetches what
the store holds for the indexes that exist, and the pure decision runs per
address. Nothing about the checked addresses is written anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from suppression.domain.addresses import canonicalise
from suppression.domain.jurisdictions import (
    CountrySource,
    Jurisdiction,
    infer_country,
)
from suppression.domain.policy import (
    NEVER_SEEN,
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    Decision,
    PolicySettings,
    Reason,
    SubjectState,
    decide,
    denied,
    effective_consent,
)
from suppression.domain.vault import AddressVault

CheckItem = tuple[Any, str | None]  # (the email as sent, a normalised country hint)

_SELECT = """
SELECT s.email_index, s.country, s.country_source, s.erased_at,
       s.last_purchase_at, s.last_inquiry_at,
       p.status, p.changed_at, a.status, a.changed_at,
       (SELECT {agg} FROM blocks b WHERE b.subject_id = s.id AND b.is_active = {true})
FROM check_keys k
JOIN subjects s ON s.email_index = k.idx
LEFT JOIN consent_states p ON p.subject_id = s.id AND p.purpose = {param}
LEFT JOIN consent_states a ON a.subject_id = s.id AND a.purpose = 'all'
"""
_SQLITE_SELECT = _SELECT.format(agg="group_concat(b.kind)", true="1", param="?")
_PG_SELECT = _SELECT.format(agg="string_agg(b.kind, ',')", true="true", param="%s")


def _sqlite_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pg_time(value: datetime | None) -> datetime | None:
    return value


class StoreReader:
    """Fetches the stored state of many indexes at once, per database."""

    def __init__(self, session: Session):
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.to_time = _sqlite_time if self.dialect == "sqlite" else _pg_time
        self._prepared = False

    def fetch(self, indexes: set[bytes], purpose: str) -> list[tuple[Any, ...]]:
        if not indexes:
            return []
        cursor = self.connection.connection.driver_connection.cursor()
        try:
            if self.dialect == "sqlite":
                return self._fetch_sqlite(cursor, indexes, purpose)
            return self._fetch_postgresql(cursor, indexes, purpose)
        finally:
            cursor.close()

    def _fetch_sqlite(self, cursor: Any, indexes: set[bytes], purpose: str) -> list[Any]:
        if not self._prepared:
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS check_keys (idx BLOB PRIMARY KEY) WITHOUT ROWID"
            )
            self._prepared = True
        cursor.execute("DELETE FROM check_keys")
        cursor.executemany("INSERT INTO check_keys (idx) VALUES (?)", ((i,) for i in indexes))
        cursor.execute(_SQLITE_SELECT, (purpose,))
        rows = cursor.fetchall()
        cursor.execute("DELETE FROM check_keys")
        return rows

    def _fetch_postgresql(self, cursor: Any, indexes: set[bytes], purpose: str) -> list[Any]:
        if not self._prepared:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS check_keys (idx bytea) ON COMMIT DROP")
            self._prepared = True
        else:
            cursor.execute("TRUNCATE check_keys")
        with cursor.copy("COPY check_keys (idx) FROM STDIN") as copy:
            for index in indexes:
                copy.write_row((index,))
        cursor.execute("ANALYZE check_keys")
        cursor.execute(_PG_SELECT, (purpose,))
        return cursor.fetchall()


class AddressChecker:
    """Decides a list chunk by chunk; caches what many addresses share."""

    def __init__(
        self,
        session: Session,
        vault: AddressVault,
        settings: PolicySettings,
        purpose: str,
        now: datetime,
    ):
        self.reader = StoreReader(session)
        self.vault = vault
        self.settings = settings
        self.purpose = purpose
        self.now = now
        self._country_of_domain: dict[str, str | None] = {}
        self._unseen: dict[str | None, Decision] = {}

    def _unseen_decision(self, country: str | None) -> Decision:
        decision = self._unseen.get(country)
        if decision is None:
            source = None if country is None else CountrySource.INFERRED
            decision = decide(NEVER_SEEN, Jurisdiction(country, source), self.settings, self.now)
            self._unseen[country] = decision
        return decision

    def _inferred(self, canonical: str) -> str | None:
        domain = canonical[canonical.rindex("@") + 1 :]
        try:
            return self._country_of_domain[domain]
        except KeyError:
            country = self._country_of_domain[domain] = infer_country(domain)
            return country

    def decide_chunk(self, items: list[CheckItem]) -> list[Decision]:
        index = self.vault.index
        canonical = [canonicalise(raw) if isinstance(raw, str) else None for raw, _ in items]
        keys = [None if c is None else index(c) for c in canonical]
        rows = self.reader.fetch({k for k in keys if k is not None}, self.purpose)
        stored = {row[0]: row for row in rows}
        invalid = denied(Reason.INVALID)
        unseen = self._unseen_decision
        inferred = self._inferred
        decisions: list[Decision] = []
        append = decisions.append
        for (_, hint), address, key in zip(items, canonical, keys, strict=True):
            if address is None:
                append(invalid)
                continue
            row = stored.get(key)
            if row is None:
                append(unseen(hint if hint is not None else inferred(address)))
            else:
                append(self._stored_decision(row, hint, address))
        return decisions

    def _stored_decision(self, row: tuple[Any, ...], hint: str | None, address: str) -> Decision:
        (
            _,
            country,
            source,
            erased_at,
            purchase,
            inquiry,
            p_status,
            p_at,
            a_status,
            a_at,
            blocks,
        ) = row
        if source == CountrySource.DECLARED:
            jurisdiction = Jurisdiction(country, CountrySource.DECLARED)
        elif hint is not None:
            jurisdiction = Jurisdiction(hint, CountrySource.HINT)
        elif source is not None:
            jurisdiction = Jurisdiction(country, CountrySource(source))
        else:
            inferred = self._inferred(address)
            jurisdiction = Jurisdiction(inferred, CountrySource.INFERRED if inferred else None)
        to_time = self.reader.to_time
        purpose_record = (
            ConsentRecord(ConsentStatus(p_status), to_time(p_at)) if p_status is not None else None
        )
        all_record = (
            ConsentRecord(ConsentStatus(a_status), to_time(a_at)) if a_status is not None else None
        )
        state = SubjectState(
            erased=erased_at is not None,
            blocks=frozenset(BlockKind(b) for b in blocks.split(",")) if blocks else frozenset(),
            consent=effective_consent(purpose_record, all_record),
            last_purchase_at=to_time(purchase),
            last_inquiry_at=to_time(inquiry),
        )
        return decide(state, jurisdiction, self.settings, self.now)


def check_addresses(
    session: Session,
    vault: AddressVault,
    settings: PolicySettings,
    purpose: str,
    items: Iterable[CheckItem],
    now: datetime,
    chunk_size: int = 50_000,
) -> Iterator[tuple[CheckItem, Decision]]:
    """Yield each item with its decision, in input order."""
    checker = AddressChecker(session, vault, settings, purpose, now)
    chunk: list[CheckItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= chunk_size:
            yield from zip(chunk, checker.decide_chunk(chunk), strict=True)
            chunk = []
    if chunk:
        yield from zip(chunk, checker.decide_chunk(chunk), strict=True)
