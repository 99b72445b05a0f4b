"""Pre-send checks: whole lists against the store in one set query per chunk.

One pass canonicalises and indexes each chunk, one query per chunk fetches what
the store holds for the indexes that exist, and the pure decision runs per
address. Nothing about the checked addresses is written anywhere.

Where the time goes (benchmarks/checks.py): the query and the per-row decision
cost as much as canonicalising and hashing. So the query reads the store in the
order of its keys (sorted indexes, then subject ids), timestamps are only sent
where the decision can need them, and a decision is computed once per distinct
combination of what it depends on and then looked up.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from hashlib import sha256
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from suppression.domain.addresses import canonicalise, keyed_index
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
    has_implied_consent,
)
from suppression.domain.vault import AddressVault
from suppression.models import HashedSuppression

CheckItem = tuple[Any, str | None]  # (the email as sent, a normalised country hint)

INDEX_BYTES = 32  # HMAC-SHA256
_STRONGER_THAN_OPT_OUT = frozenset(
    {Reason.INVALID, Reason.ERASED, Reason.COMPLAINED, Reason.BOUNCED, Reason.OPTED_OUT}
)

# The two consent times are only compared with each other, and only when both
# rows exist: otherwise they stay in the database instead of being parsed per row.
_COLUMNS = """s.email_index, s.country, s.country_source, s.erased_at,
       s.last_purchase_at, s.last_inquiry_at,
       p.status, CASE WHEN a.status IS NOT NULL THEN p.changed_at END,
       a.status, CASE WHEN p.status IS NOT NULL THEN a.changed_at END,
       (SELECT {agg} FROM blocks b WHERE b.subject_id = s.id AND b.is_active = {true})"""
_CONSENTS = """LEFT JOIN consent_states p ON p.subject_id = s.id AND p.purpose = {purpose}
LEFT JOIN consent_states a ON a.subject_id = s.id AND a.purpose = 'all'"""

# SQLite: the sorted indexes travel as one blob, cut into keys by a recursive CTE
# (no temp table to fill row by row); the subject ids they match are collected
# into a sorted list first, so subjects and consent_states are read in id order.
_SQLITE_SELECT = f"""
WITH RECURSIVE k(n, idx) AS (
    SELECT 0, substr(?1, 1, {INDEX_BYTES})
    UNION ALL
    SELECT n + 1, substr(?1, (n + 1) * {INDEX_BYTES} + 1, {INDEX_BYTES}) FROM k WHERE n + 1 < ?2
)
SELECT {_COLUMNS.format(agg="group_concat(b.kind)", true="1")}
FROM subjects s
{_CONSENTS.format(purpose="?3")}
WHERE s.id IN (SELECT m.id FROM k CROSS JOIN subjects m ON m.email_index = k.idx)
"""
_PG_SELECT = f"""
SELECT {_COLUMNS.format(agg="string_agg(b.kind, ',')", true="true")}
FROM check_keys k
JOIN subjects s ON s.email_index = k.idx
{_CONSENTS.format(purpose="%s")}
"""


def _sqlite_time(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _pg_time(value: datetime | None) -> datetime | None:
    return value


class QueryAnswer:
    """A chunk's query: started on the helper thread, its rows read on the caller's.

    The helper does the part that waits on the database without the GIL (for
    PostgreSQL the whole query, for SQLite its first step, where the keys are
    cut, looked up and the subject ids sorted). Turning rows into Python objects
    needs the GIL either way; done by the caller, one chunk's rows are in memory
    at a time.
    """

    __slots__ = ("cursor",)

    def __init__(self, cursor: Any = None):
        self.cursor = cursor

    def collect(self) -> list[tuple[Any, ...]]:
        if self.cursor is None:
            return []
        try:
            return self.cursor.fetchall()  # type: ignore[no-any-return]
        finally:
            self.discard()

    def discard(self) -> None:
        if self.cursor is not None:
            self.cursor.close()
            self.cursor = None


class StoreReader:
    """Fetches the stored state of many indexes at once, per database."""

    def __init__(self, session: Session):
        self.connection = session.connection()
        self.dialect = self.connection.dialect.name
        self.to_time = _sqlite_time if self.dialect == "sqlite" else _pg_time
        self._prepared = False

    def fetch(self, indexes: set[bytes], purpose: str) -> list[tuple[Any, ...]]:
        return self.start(indexes, purpose).collect()

    def start(self, indexes: set[bytes], purpose: str) -> QueryAnswer:
        if not indexes:
            return QueryAnswer()
        keys = sorted(indexes)  # the store's index is read in order, not at random
        cursor = self.connection.connection.driver_connection.cursor()
        try:
            if self.dialect == "sqlite":
                self._start_sqlite(cursor, keys, purpose)
            else:
                self._start_postgresql(cursor, keys, purpose)
        except BaseException:
            cursor.close()
            raise
        return QueryAnswer(cursor)

    def _start_sqlite(self, cursor: Any, keys: list[bytes], purpose: str) -> None:
        blob = b"".join(keys)
        if len(blob) != INDEX_BYTES * len(keys):  # the query cuts it every 32 bytes
            raise ValueError("a keyed index is not 32 bytes long")
        cursor.execute(_SQLITE_SELECT, (blob, len(keys), purpose))

    def _start_postgresql(self, cursor: Any, keys: list[bytes], purpose: str) -> None:
        if not self._prepared:
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS check_keys (idx bytea) ON COMMIT DROP")
            self._prepared = True
        else:
            cursor.execute("TRUNCATE check_keys")
        with cursor.copy("COPY check_keys (idx) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["bytea"])
            for key in keys:
                copy.write_row((key,))
        cursor.execute("ANALYZE check_keys")
        cursor.execute(_PG_SELECT, (purpose,))


class PreparedChunk:
    """A chunk canonicalised and indexed: what the query needs and the decision after.

    Per item: its keyed index (None when the address is invalid) and the country
    its domain implies; the canonical text itself is not kept.
    """

    __slots__ = ("domain_countries", "hashed", "items", "keys")

    def __init__(
        self,
        items: list[CheckItem],
        keys: list[bytes | None],
        domain_countries: list[str | None],
        hashed: set[int] | None = None,
    ):
        self.items = items
        self.keys = keys
        self.domain_countries = domain_countries
        self.hashed = hashed or set()  # positions on an imported hashed suppression list

    def indexes(self) -> set[bytes]:
        return {k for k in self.keys if k is not None}


class AddressChecker:
    """Decides a list chunk by chunk; caches what many addresses share.

    A stored subject's decision depends only on: erased or not, its active
    blocks, its purpose and `all` consent statuses and which of the two is newer,
    the country of its jurisdiction (and the stored source, so that a bad value
    still fails as before), and (where soft opt-in applies) whether a purchase or
    inquiry is recent enough. The first row with a combination is
    decided in full; every later one looks the answer up. If `decide` ever reads
    more of the state, that must join `_signature`.
    """

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
        self._stored: dict[tuple[Any, ...], Decision] = {}
        # Imported lists that were hashed elsewhere (services/imports.py): held in
        # memory for the check, and only read when there are any.
        self._hashed: set[bytes] = (
            set(session.scalars(select(HashedSuppression.email_sha256)))
            if session.scalar(select(HashedSuppression.email_sha256).limit(1))
            else set()
        )

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

    def prepare(self, items: list[CheckItem]) -> PreparedChunk:
        key = self.vault.index_key
        inferred = self._inferred
        keys: list[bytes | None] = []
        countries: list[str | None] = []
        add_key = keys.append
        add_country = countries.append
        hashed_list = self._hashed
        on_hashed_list: set[int] = set()
        for position, (raw, _) in enumerate(items):
            address = canonicalise(raw) if isinstance(raw, str) else None
            if address is None:
                add_key(None)
                add_country(None)
            else:
                add_key(keyed_index(key, address))
                add_country(inferred(address))
                if hashed_list and sha256(address.encode("utf-8")).digest() in hashed_list:
                    on_hashed_list.add(position)
        return PreparedChunk(items, keys, countries, on_hashed_list)

    def decide_prepared(self, chunk: PreparedChunk, rows: list[tuple[Any, ...]]) -> list[Decision]:
        stored = {row[0]: row for row in rows}
        invalid = denied(Reason.INVALID)
        unseen = self._unseen_decision
        known = self._stored
        signature = self._signature
        decisions: list[Decision] = []
        append = decisions.append
        for (_, hint), key, domain_country in zip(
            chunk.items, chunk.keys, chunk.domain_countries, strict=True
        ):
            if key is None:
                append(invalid)
                continue
            row = stored.get(key)
            if row is None:
                append(unseen(hint if hint is not None else domain_country))
                continue
            sign = signature(row, hint, domain_country)
            decision = known.get(sign)
            if decision is None:
                decision = known[sign] = self._stored_decision(row, hint, domain_country)
            append(decision)
        if chunk.hashed:
            self._apply_hashed(chunk, decisions)
        return decisions

    def _apply_hashed(self, chunk: PreparedChunk, decisions: list[Decision]) -> None:
        """An address on an imported hashed list is opted out, unless a stronger
        reason already holds (the person's own later opt-in turns the hashed entry
        into an ordinary opt-out first: resubscribe.materialise_hashed_suppression)."""
        opted_out = denied(Reason.OPTED_OUT)
        for position in chunk.hashed:
            if decisions[position].reason not in _STRONGER_THAN_OPT_OUT:
                decisions[position] = opted_out

    def decide_chunk(self, items: list[CheckItem]) -> list[Decision]:
        chunk = self.prepare(items)
        return self.decide_prepared(chunk, self.reader.fetch(chunk.indexes(), self.purpose))

    @staticmethod
    def _jurisdiction(
        country: str | None, source: int | None, hint: str | None, domain_country: str | None
    ) -> Jurisdiction:
        """Declared > hint in this request > stored > inferred from the domain."""
        if source == CountrySource.DECLARED:
            return Jurisdiction(country, CountrySource.DECLARED)
        if hint is not None:
            return Jurisdiction(hint, CountrySource.HINT)
        if source is not None:
            return Jurisdiction(country, CountrySource(source))
        return Jurisdiction(domain_country, CountrySource.INFERRED if domain_country else None)

    def _signature(
        self, row: tuple[Any, ...], hint: str | None, domain_country: str | None
    ) -> tuple[Any, ...]:
        """Everything `decide` reads of this row, for the cache of decisions."""
        _, country, source, erased, purchase, inquiry, p_status, p_at, a_status, a_at, blocks = row
        # Same order of precedence as _jurisdiction, without building objects.
        if source == CountrySource.DECLARED or (hint is None and source is not None):
            where = country
        elif hint is not None:
            where = hint
        else:
            where = domain_country
        newer = None
        if p_at is not None and a_at is not None:
            p_time, a_time = self.reader.to_time(p_at), self.reader.to_time(a_at)
            newer = (p_time > a_time) - (p_time < a_time)  # type: ignore[operator]
        implied = None
        if where in self.settings.soft_opt_in_countries:
            to_time = self.reader.to_time
            recent = SubjectState(
                last_purchase_at=to_time(purchase), last_inquiry_at=to_time(inquiry)
            )
            implied = has_implied_consent(recent, self.settings, self.now)
        return (erased is not None, blocks, p_status, a_status, newer, source, where, implied)

    def _stored_decision(
        self, row: tuple[Any, ...], hint: str | None, domain_country: str | None
    ) -> Decision:
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
        jurisdiction = self._jurisdiction(country, source, hint, domain_country)
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


def _chunks(items: Iterable[CheckItem], size: int) -> Iterator[list[CheckItem]]:
    chunk: list[CheckItem] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def check_addresses(
    session: Session,
    vault: AddressVault,
    settings: PolicySettings,
    purpose: str,
    items: Iterable[CheckItem],
    now: datetime,
    chunk_size: int = 50_000,
) -> Iterator[tuple[CheckItem, Decision]]:
    """Yield each item with its decision, in input order.

    While the database works on chunk n, chunk n + 1 is canonicalised and
    indexed, and chunk n - 1 decided and handed on. One helper thread starts
    the queries, one at a time, on this session's connection; the caller's
    thread only touches the connection while the helper is idle.
    """
    checker = AddressChecker(session, vault, settings, purpose, now)
    reader = checker.reader
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="check-query")
    queued: list[tuple[PreparedChunk, Future[QueryAnswer]]] = []
    try:
        for items_chunk in _chunks(items, chunk_size):
            prepared = checker.prepare(items_chunk)
            done = _collect(queued.pop()) if queued else None
            queued.append((prepared, pool.submit(reader.start, prepared.indexes(), purpose)))
            if done is not None:
                yield from _decided(checker, *done)
        if queued:
            yield from _decided(checker, *_collect(queued.pop()))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for _, answer in queued:
            if answer.done() and not answer.cancelled() and answer.exception() is None:
                answer.result().discard()


def _collect(
    entry: tuple[PreparedChunk, Future[QueryAnswer]],
) -> tuple[PreparedChunk, list[tuple[Any, ...]]]:
    prepared, answer = entry
    return prepared, answer.result().collect()


def _decided(
    checker: AddressChecker, chunk: PreparedChunk, rows: list[tuple[Any, ...]]
) -> Iterator[tuple[CheckItem, Decision]]:
    return zip(chunk.items, checker.decide_prepared(chunk, rows), strict=True)
