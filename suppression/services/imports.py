"""Importing suppression lists from a previous provider, plain or SHA-256 hashed.

Rows are validated first; a bad row is reported with its line number and never
written. Good rows are written a chunk at a time in a few set-based statements
(subjects, events, states, hashed suppressions); the caller commits each chunk.
An import never turns an opted-out, complained or erased address back to sendable.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.addresses import canonicalise, sha256_hex
from suppression.domain.jurisdictions import CountrySource, UnknownCountry, normalise_country
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus
from suppression.domain.vault import AddressVault
from suppression.errors import InvalidInput, MalformedInput
from suppression.models import Block, ConsentState, HashedSuppression, ImportRun, Subject
from suppression.services.consents import update_countries
from suppression.services.dialects import bulk_insert, bulk_insert_returning, dialect_name
from suppression.services.events import (
    EventContext,
    NewEvent,
    append_events,
    note_communications,
)
from suppression.services.outbox import enqueue_subject_changes

CHUNK = 50_000
COLUMNS = ("email", "email_sha256", "status", "purpose", "country", "occurred_at", "source")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_OPTED_OUT = ConsentStatus.OPTED_OUT
_STATUS = {"": _OPTED_OUT, "opted_out": _OPTED_OUT, "opted_in": ConsentStatus.OPTED_IN}


@dataclass(frozen=True, slots=True)
class ImportRow:
    line: int
    canonical: str | None  # a plain row
    sha256: bytes | None  # a hashed row
    status: ConsentStatus
    purpose: str
    country: str | None
    occurred_at: datetime
    source: str


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)


class RowReader:
    """CSV text → ImportRow or (line, error), one row at a time."""

    def __init__(self, purposes: tuple[str, ...], now: datetime, default_source: str):
        self.purposes = purposes
        self.now = now
        self.default_source = default_source
        self._countries: dict[str, str] = {}

    def read(self, text: IO[str]) -> Iterator[ImportRow | tuple[int, str]]:
        reader = csv.reader(text)
        line = 1
        try:
            header = next(reader, None)
            if header is None:
                raise InvalidInput("the CSV is empty", {"csv": ["A header row is required."]})
            columns = [name.strip().lower() for name in header]
            if "email" not in columns and "email_sha256" not in columns:
                raise InvalidInput(
                    "the CSV needs an `email` or an `email_sha256` column",
                    {"csv": {"1": ["No `email` or `email_sha256` column."]}},
                )
            position = {name: columns.index(name) for name in COLUMNS if name in columns}
            for line, values in enumerate(reader, start=2):
                if not values or not any(v.strip() for v in values):
                    continue
                yield self._row(line, values, position)
        except UnicodeDecodeError as exc:
            raise MalformedInput(f"the CSV is not UTF-8 (near line {line + 1})") from exc
        except csv.Error as exc:
            raise MalformedInput(f"malformed CSV near line {line + 1}: {exc}") from exc

    def _row(
        self, line: int, values: list[str], position: dict[str, int]
    ) -> ImportRow | tuple[int, str]:
        size = len(values)
        email, hashed, status_text, purpose, country, when, source = (
            values[at].strip() if 0 <= at < size else ""
            for at in (position.get(name, -1) for name in COLUMNS)
        )
        canonical = sha256 = None
        if email:
            canonical = canonicalise(email)
            if canonical is None:
                return line, "not a valid email address"
        elif hashed:
            hashed = hashed.lower()
            if not _HEX64.fullmatch(hashed):
                return line, "email_sha256 must be 64 hexadecimal characters"
            sha256 = bytes.fromhex(hashed)
        else:
            return line, "no email or email_sha256"
        status = _STATUS.get(status_text)
        if status is None:
            return line, "status must be opted_in or opted_out"
        if sha256 is not None and status is not _OPTED_OUT:
            return line, "a hashed row can only suppress (status opted_out)"
        purpose = purpose or ALL_PURPOSES
        if purpose not in self.purposes and purpose != ALL_PURPOSES:
            return line, f"unknown purpose {purpose!r}"
        if country:
            known = self._countries.get(country)
            if known is None:
                try:
                    known = self._countries[country] = normalise_country(country)
                except UnknownCountry:
                    return line, f"unknown country {country!r}"
            country = known
        occurred_at = self.now
        if when:
            try:
                occurred_at = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                return line, "occurred_at is not an ISO 8601 time"
            if occurred_at.tzinfo is None:
                occurred_at = occurred_at.replace(tzinfo=UTC)
            if occurred_at > self.now:
                return line, "occurred_at is in the future"
        source = (source or self.default_source)[:100]
        return ImportRow(
            line, canonical, sha256, status, purpose, country or None, occurred_at, source
        )


def import_csv(
    session: Session,
    vault: AddressVault,
    stream: IO[bytes],
    purposes: tuple[str, ...],
    actor: str,
    now: datetime,
    commit: Callable[[], None],
    progress: Callable[[int], None] | None = None,
) -> tuple[ImportRun, ImportReport]:
    """Import a CSV byte stream; `commit` is called after each chunk (the edge commits)."""
    run = ImportRun(actor=actor, started_at=now, rows=0, imported=0, rejected=0)
    session.add(run)
    session.flush()
    report = ImportReport()
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = RowReader(purposes, now, "import")
    writer = ChunkWriter(session, vault, actor, now, run.id)
    try:
        for chunk in _chunks(reader.read(text), CHUNK):
            good = [row for row in chunk if isinstance(row, ImportRow)]
            report.rejected.extend(row for row in chunk if not isinstance(row, ImportRow))
            report.rows += len(chunk)
            refused = writer.write(good)
            report.rejected.extend(refused)
            report.imported += len(good) - len(refused)
            run.rows, run.imported, run.rejected = (
                report.rows,
                report.imported,
                len(report.rejected),
            )
            session.flush()
            commit()
            if progress is not None:
                progress(len(chunk))
    finally:
        text.detach()
    report.rejected.sort()
    run.finished_at = now
    session.flush()
    commit()
    return run, report


def _chunks(rows: Iterable[ImportRow | tuple[int, str]], size: int) -> Iterator[list]:
    chunk: list[ImportRow | tuple[int, str]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class ChunkWriter:
    """Writes validated rows with a few set-based statements per chunk."""

    def __init__(
        self, session: Session, vault: AddressVault, actor: str, now: datetime, import_id: int
    ):
        self.session = session
        self.vault = vault
        self.actor = actor
        self.now = now
        self.import_id = import_id

    def write(self, rows: list[ImportRow]) -> list[tuple[int, str]]:
        """Write the rows; the ones refused by the re-subscribe guard come back."""
        plain = [row for row in rows if row.canonical is not None]
        hashed = [row for row in rows if row.sha256 is not None]
        refused: list[tuple[int, str]] = []
        if plain:
            refused = self._write_plain(plain)
        if hashed:
            self._write_hashed(hashed)
        return refused

    def _write_plain(self, rows: list[ImportRow]) -> list[tuple[int, str]]:
        session = self.session
        index_of = {row.canonical: self.vault.index(row.canonical) for row in rows}
        # An opt-out is always accepted, so its time can move the subject's last
        # communication in the same statement that creates or finds the subject.
        latest_out: dict[str | None, datetime] = {}
        for row in rows:
            if row.status is _OPTED_OUT:
                held = latest_out.get(row.canonical)
                if held is None or held < row.occurred_at:
                    latest_out[row.canonical] = row.occurred_at
        subject_rows = [
            {
                "email_index": index,
                "email_sealed": self.vault.seal(canonical),
                "created_at": self.now,
                "last_communication_at": latest_out.get(canonical),
            }
            for canonical, index in index_of.items()
        ]
        table = Subject.__table__
        returned_moved_opt_outs = dialect_name(session) == "postgresql"
        returned = bulk_insert_returning(
            session,
            table,
            subject_rows,
            lambda statement: statement.on_conflict_do_update(
                index_elements=["email_index"],
                set_={
                    "last_communication_at": func.greatest(
                        table.c.last_communication_at, statement.excluded.last_communication_at
                    )
                },
            ),
            (table.c.id, table.c.email_index, table.c.erased_at),
        )
        if returned is None:  # SQLite: insert the new, then read them all back
            bulk_insert(
                session,
                table,
                subject_rows,
                lambda statement: statement.on_conflict_do_nothing(index_elements=["email_index"]),
            )
            returned = session.execute(
                select(Subject.id, Subject.email_index, Subject.erased_at).where(
                    Subject.email_index.in_(list(index_of.values()))
                )
            ).all()
        subjects = {index: (subject_id, erased_at) for subject_id, index, erased_at in returned}
        refused, accepted = self._guard(rows, index_of, subjects)
        if not accepted:
            return refused
        news = [
            NewEvent(
                subject_id=subject_id,
                action=row.status.value,
                ctx=EventContext(
                    actor=self.actor,
                    source=row.source,
                    occurred_at=row.occurred_at,
                    recorded_at=self.now,
                    evidence={"import_id": self.import_id, "line": row.line},
                ),
                purpose=row.purpose,
                country=row.country,
            )
            for row, subject_id in accepted
        ]
        event_ids = append_events(session, news)
        latest: dict[int, datetime] = {}
        for row, subject_id in accepted:
            # PostgreSQL moved it for opt-outs already (see above).
            if row.status is _OPTED_OUT and returned_moved_opt_outs:
                continue
            if subject_id not in latest or latest[subject_id] < row.occurred_at:
                latest[subject_id] = row.occurred_at
        note_communications(session, latest)
        self._upsert_states(accepted, event_ids)
        self._update_countries(accepted)
        # Destinations hear of imported suppressions like of any other change.
        enqueue_subject_changes(session, sorted({sid for _row, sid in accepted}), self.now)
        return refused

    def _guard(
        self,
        rows: list[ImportRow],
        index_of: dict[str | None, bytes],
        subjects: dict[bytes, tuple[int, datetime | None]],
    ) -> tuple[list[tuple[int, str]], list[tuple[ImportRow, int]]]:
        """Opt-in rows for erased, complained or opted-out subjects are refused."""
        opt_in_ids = {
            subjects[index_of[row.canonical]][0]
            for row in rows
            if row.status == ConsentStatus.OPTED_IN
        }
        complained: set[int] = set()
        opted_out: dict[tuple[int, str], datetime] = {}
        if opt_in_ids:
            complained = set(
                self.session.scalars(
                    select(Block.subject_id).where(
                        Block.subject_id.in_(opt_in_ids),
                        Block.kind == BlockKind.COMPLAINT.value,
                        Block.is_active.is_(True),
                    )
                )
            )
            opted_out = {
                (subject_id, purpose): changed_at
                for subject_id, purpose, changed_at in self.session.execute(
                    select(
                        ConsentState.subject_id, ConsentState.purpose, ConsentState.changed_at
                    ).where(
                        ConsentState.subject_id.in_(opt_in_ids),
                        ConsentState.status == ConsentStatus.OPTED_OUT.value,
                    )
                )
            }
        hashed_out = self._hashed_suppressed(
            [row.canonical for row in rows if row.status == ConsentStatus.OPTED_IN]
        )
        refused: list[tuple[int, str]] = []
        accepted: list[tuple[ImportRow, int]] = []
        for row in rows:
            subject_id, erased_at = subjects[index_of[row.canonical]]
            if row.status == ConsentStatus.OPTED_IN:
                problem = _opt_in_problem(row, subject_id, erased_at, complained, opted_out)
                if problem is None and row.canonical in hashed_out:
                    problem = "refused: the address is on an imported suppression list"
                if problem:
                    refused.append((row.line, problem))
                    continue
            accepted.append((row, subject_id))
        return refused, accepted

    def _hashed_suppressed(self, canonicals: list[str | None]) -> set[str]:
        if not canonicals:
            return set()
        by_hash = {bytes.fromhex(sha256_hex(c)): c for c in canonicals if c}
        found = self.session.scalars(
            select(HashedSuppression.email_sha256).where(
                HashedSuppression.email_sha256.in_(list(by_hash))
            )
        )
        return {by_hash[h] for h in found}

    def _upsert_states(self, accepted: list[tuple[ImportRow, int]], event_ids: list[int]) -> None:
        newest: dict[tuple[int, str], dict] = {}
        for (row, subject_id), event_id in zip(accepted, event_ids, strict=True):
            key = (subject_id, row.purpose)
            held = newest.get(key)
            if held is None or held["changed_at"] <= row.occurred_at:
                newest[key] = {
                    "subject_id": subject_id,
                    "purpose": row.purpose,
                    "status": row.status.value,
                    "changed_at": row.occurred_at,
                    "source": row.source,
                    "event_id": event_id,
                }
        bulk_insert(
            self.session,
            ConsentState.__table__,
            list(newest.values()),
            lambda statement: statement.on_conflict_do_update(
                index_elements=["subject_id", "purpose"],
                set_={
                    k: statement.excluded[k] for k in ("status", "changed_at", "source", "event_id")
                },
                where=ConsentState.__table__.c.changed_at <= statement.excluded.changed_at,
            ),
        )

    def _update_countries(self, accepted: list[tuple[ImportRow, int]]) -> None:
        hints = [
            (subject_id, row.country, row.occurred_at)
            for row, subject_id in accepted
            if row.country
        ]
        if hints:
            update_countries(self.session, hints, CountrySource.HINT)

    def _write_hashed(self, rows: list[ImportRow]) -> None:
        newest: dict[bytes, dict] = {}
        for row in rows:
            held = newest.get(row.sha256)
            if held is None or held["changed_at"] <= row.occurred_at:
                newest[row.sha256] = {
                    "email_sha256": row.sha256,
                    "reason": row.status.value,
                    "changed_at": row.occurred_at,
                    "source": row.source,
                    "import_id": self.import_id,
                }
        bulk_insert(
            self.session,
            HashedSuppression.__table__,
            list(newest.values()),
            lambda statement: statement.on_conflict_do_update(
                index_elements=["email_sha256"],
                set_={
                    k: statement.excluded[k]
                    for k in ("reason", "changed_at", "source", "import_id")
                },
                where=HashedSuppression.__table__.c.changed_at <= statement.excluded.changed_at,
            ),
        )


def _opt_in_problem(
    row: ImportRow,
    subject_id: int,
    erased_at: datetime | None,
    complained: set[int],
    opted_out: dict[tuple[int, str], datetime],
) -> str | None:
    if erased_at is not None:
        return "refused: the address was erased; an import cannot opt it back in"
    if subject_id in complained:
        return "refused: a complaint was recorded; an import cannot opt it back in"
    purposes = [ALL_PURPOSES] if row.purpose == ALL_PURPOSES else [row.purpose, ALL_PURPOSES]
    for purpose in purposes:
        changed_at = opted_out.get((subject_id, purpose))
        if changed_at is not None and changed_at <= row.occurred_at:
            return "refused: the address opted out; an import cannot opt it back in"
    if row.purpose == ALL_PURPOSES and any(
        sid == subject_id and at <= row.occurred_at for (sid, _p), at in opted_out.items()
    ):
        return "refused: the address opted out; an import cannot opt it back in"
    return None
