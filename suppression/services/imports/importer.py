"""Importing suppression lists from a previous provider, plain or SHA-256 hashed.

Rows are validated first; a bad row is reported with its line number and never
written. Good rows are written a chunk at a time in a few set-based statements
(subjects, events, states, hashed suppressions); the caller commits each chunk.
A thread prepares the next chunk meanwhile (`batching.ReadAhead`,
services/imports/chunks.py); the rows come from services/imports/rows.py.
An import never turns an opted-out, complained or erased address back to sendable.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sqlalchemy import false, func, literal_column, select
from sqlalchemy.orm import Session

from suppression.domain.addresses import sha256_hex
from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import BlockKind, ConsentStatus
from suppression.domain.resubscribe import (
    OptInAuthority,
    OptInConflict,
    opt_in_conflict,
    overrides_opt_out,
)
from suppression.domain.vault import AddressVault
from suppression.services.consents.events import append_event_rows, note_communications
from suppression.services.consents.recording import newer_state_wins, update_countries
from suppression.services.destinations.enqueue import enqueue_subject_changes
from suppression.services.imports.chunks import SUBJECT_COLUMNS, ChunkPreparer, PreparedChunk
from suppression.services.imports.rows import OPTED_IN, OPTED_OUT, ImportRow, RowReader
from suppression.store.batching import ReadAhead, chunked
from suppression.store.decision_inputs import CallerKept, rebuilt_by_caller
from suppression.store.dialects import (
    bulk_insert,
    bulk_insert_returning,
    copy_rows,
    dialect_name,
    without_jit,
)
from suppression.store.models import Block, ConsentState, HashedSuppression, ImportRun, Subject

CHUNK = 50_000
REJECTED_LISTED = 100  # a file of a million bad rows must not become a million errors


@dataclass
class ImportReport:
    rows: int = 0
    imported: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # the first, by line
    rejected_total: int = 0

    def reject(self, rows: list[tuple[int, str]]) -> None:
        """Rows of one chunk refused; chunks come in line order."""
        self.rejected_total += len(rows)
        room = REJECTED_LISTED - len(self.rejected)
        if room > 0 and rows:
            self.rejected.extend(sorted(rows)[:room])


@dataclass
class ImportStep:
    """Where an import stands after a flushed chunk (or, `finished`, at its end)."""

    run: ImportRun
    report: ImportReport
    finished: bool = False


def import_csv(
    session: Session,
    vault: AddressVault,
    stream: IO[bytes],
    purposes: tuple[str, ...],
    actor: str,
    now: datetime,
) -> Iterator[ImportStep]:
    """Import a CSV byte stream, one flushed chunk at a time. The edge commits each
    step it is given, so a killed import keeps every chunk before the one in hand;
    the last step is the finished run."""
    run = ImportRun(actor=actor, started_at=now, rows=0, imported=0, rejected=0)
    session.add(run)
    session.flush()
    report = ImportReport()
    decoded = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
    reader = RowReader(purposes, now, "import")
    writer = ChunkWriter(session, vault, actor, now, run.id)
    try:
        with ReadAhead(_prepared(reader.read(decoded), writer.preparer.prepare, CHUNK)) as chunks:
            for chunk in chunks:
                report.rows += chunk.rows
                refused = writer.write(chunk)
                report.reject(chunk.rejected + refused)
                report.imported += len(chunk.good) - len(refused)
                run.rows, run.imported, run.rejected = (
                    report.rows,
                    report.imported,
                    report.rejected_total,
                )
                session.flush()
                yield ImportStep(run, report)
    finally:
        decoded.detach()
    run.finished_at = now
    session.flush()
    yield ImportStep(run, report, finished=True)


def _prepared(
    rows: Iterable[ImportRow | tuple[int, str]],
    prepare: Callable[[list[ImportRow | tuple[int, str]]], PreparedChunk],
    size: int,
) -> Iterator[PreparedChunk]:
    for chunk in chunked(rows, size):
        yield prepare(chunk)


class ChunkWriter:
    """Writes validated rows with a few set-based statements per chunk."""

    def __init__(
        self, session: Session, vault: AddressVault, actor: str, now: datetime, import_id: int
    ):
        self.session = session
        self.vault = vault
        self.now = now
        self.import_id = import_id
        self.preparer = ChunkPreparer(vault, actor, now, import_id)

    def write(self, chunk: PreparedChunk) -> list[tuple[int, str]]:
        """Write the good rows; the ones refused by the re-subscribe guard come back."""
        plain = [row for row in chunk.good if row.canonical is not None]
        hashed = [row for row in chunk.good if row.sha256 is not None]
        refused: list[tuple[int, str]] = []
        # JIT compiling a chunk's statements costs 10% of an import (benchmarks/imports.py).
        without_jit(self.session)
        if plain:
            # Each touched subject's decision_inputs row is written once, at the end.
            with rebuilt_by_caller(self.session) as kept:
                refused = self._write_plain(plain, chunk, kept)
        if hashed:
            self._write_hashed(hashed)
        return refused

    def _write_plain(
        self, rows: list[ImportRow], chunk: PreparedChunk, kept: CallerKept
    ) -> list[tuple[int, str]]:
        session = self.session
        # Keyed as ImportRow.canonical is typed: None only on hashed rows, never here.
        index_of: dict[str | None, bytes] = {
            canonical: index for canonical, (index, _sealed) in chunk.addresses.items()
        }
        table = Subject.__table__
        returned_moved_opt_outs = dialect_name(session) == "postgresql"
        returned = bulk_insert_returning(
            session,
            table,
            chunk.subject_rows,
            lambda statement: statement.on_conflict_do_update(
                index_elements=["email_index"],
                set_={
                    "last_communication_at": func.greatest(
                        table.c.last_communication_at, statement.excluded.last_communication_at
                    )
                },
            ),
            # xmax is 0 on a row this statement inserted, our transaction id on one
            # it updated: the new subjects, which have no consent state yet.
            (table.c.id, table.c.email_index, table.c.erased_at, literal_column("xmax = 0")),
            columns=SUBJECT_COLUMNS,
        )
        if returned is None:  # SQLite: insert the new, then read them all back
            bulk_insert(
                session,
                table,
                chunk.subject_rows,
                lambda statement: statement.on_conflict_do_nothing(index_elements=["email_index"]),
                columns=SUBJECT_COLUMNS,
            )
            returned = session.execute(
                select(Subject.id, Subject.email_index, Subject.erased_at, false()).where(
                    Subject.email_index.in_(list(index_of.values()))
                )
            ).all()
        subjects = {index: (subject_id, erased_at) for subject_id, index, erased_at, _n in returned}
        fresh = {subject_id for subject_id, _i, _e, inserted in returned if inserted}
        created_with_country = {
            subject_id
            for subject_id in (
                subjects[index_of[canonical]][0] for canonical in chunk.created_with_country
            )
            if subject_id in fresh
        }
        refused, accepted = self._guard(rows, index_of, subjects)
        # The rows of new subjects and of those with accepted rows are copied from
        # the view at the end (what else the upsert changed is not in the view).
        kept.touched.update(fresh)
        kept.touched.update(subject_id for _row, subject_id in accepted)
        if not accepted:
            return refused
        event = self.preparer.event
        event_ids = append_event_rows(
            session,
            self.vault,
            [event(row, subject_id) for row, subject_id in accepted],
            [chunk.links[row.line] for row, _subject_id in accepted],
            # As the upsert above returned them: it holds each subject's row lock
            # (SQLite: the write lock) until the chunk commits.
            erased={subject_id for subject_id, erased_at in subjects.values() if erased_at},
        )
        latest: dict[int, datetime] = {}
        for row, subject_id in accepted:
            # PostgreSQL moved it for opt-outs already (see above).
            if row.status == OPTED_OUT and returned_moved_opt_outs:
                continue
            if subject_id not in latest or latest[subject_id] < row.occurred_at:
                latest[subject_id] = row.occurred_at
        note_communications(session, latest)
        self._upsert_states(accepted, event_ids, fresh)
        self._update_countries(accepted, created_with_country)
        # Destinations hear of imported suppressions like of any other change.
        enqueue_subject_changes(session, sorted({sid for _row, sid in accepted}), self.now)
        return refused

    def _guard(
        self,
        rows: list[ImportRow],
        index_of: dict[str | None, bytes],
        subjects: dict[bytes, tuple[int, datetime | None]],
    ) -> tuple[list[tuple[int, str]], list[tuple[ImportRow, int]]]:
        """Opt-in rows the re-subscribe rule refuses, with its facts read for the
        whole chunk at once."""
        opt_in_ids = {
            subjects[index_of[row.canonical]][0] for row in rows if row.status == OPTED_IN
        }
        complained: set[int] = set()
        opted_out: dict[int, dict[str, datetime]] = {}
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
            for subject_id, purpose, changed_at in self.session.execute(
                select(
                    ConsentState.subject_id, ConsentState.purpose, ConsentState.changed_at
                ).where(
                    ConsentState.subject_id.in_(opt_in_ids),
                    ConsentState.status == ConsentStatus.OPTED_OUT.value,
                )
            ):
                opted_out.setdefault(subject_id, {})[purpose] = changed_at
        hashed_out = self._hashed_suppressed(
            [row.canonical for row in rows if row.status == OPTED_IN]
        )
        refused: list[tuple[int, str]] = []
        if not opt_in_ids:  # only opt-outs, always accepted (most lists)
            return refused, [(row, subjects[index_of[row.canonical]][0]) for row in rows]
        accepted: list[tuple[ImportRow, int]] = []
        for row in rows:
            subject_id, erased_at = subjects[index_of[row.canonical]]
            if row.status == OPTED_IN:
                facts = _ChunkFacts(
                    row,
                    erased_at is not None,
                    subject_id in complained,
                    opted_out.get(subject_id, {}),
                    row.canonical in hashed_out,
                )
                conflict = opt_in_conflict(facts, OptInAuthority.SENDER, has_evidence=False)
                if conflict is not None:
                    refused.append((row.line, _REFUSED[conflict]))
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

    def _upsert_states(
        self, accepted: list[tuple[ImportRow, int]], event_ids: Sequence[int], fresh: set[int]
    ) -> None:
        """The newest row per subject and purpose becomes its state; subjects this
        chunk created have none yet, so theirs are COPYed in without an upsert."""
        newest: dict[tuple[int, str], tuple] = {}
        for (row, subject_id), event_id in zip(accepted, event_ids, strict=True):
            key = (subject_id, row.purpose)
            held = newest.get(key)
            if held is None or held[3] <= row.occurred_at:
                newest[key] = (
                    subject_id,
                    row.purpose,
                    row.status,
                    row.occurred_at,
                    row.source,
                    event_id,
                )
        columns = ("subject_id", "purpose", "status", "changed_at", "source", "event_id")
        upserted = list(newest.values())
        if fresh:
            created = [state for state in upserted if state[0] in fresh]
            copy_rows(self.session, ConsentState.__table__, columns, created)
            upserted = [state for state in upserted if state[0] not in fresh]
        bulk_insert(
            self.session,
            ConsentState.__table__,
            upserted,
            newer_state_wins,
            columns=columns,
        )

    def _update_countries(
        self, accepted: list[tuple[ImportRow, int]], created_with_country: set[int]
    ) -> None:
        hints = [
            (subject_id, row.country, row.occurred_at)
            for row, subject_id in accepted
            if row.country and subject_id not in created_with_country
        ]
        if hints:
            update_countries(self.session, hints, CountrySource.HINT)

    def _write_hashed(self, rows: list[ImportRow]) -> None:
        newest: dict[bytes, dict] = {}
        for row in rows:
            assert row.sha256 is not None, "hashed rows only"
            held = newest.get(row.sha256)
            if held is None or held["changed_at"] <= row.occurred_at:
                newest[row.sha256] = {
                    "email_sha256": row.sha256,
                    "reason": row.status,
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


_REFUSED = {
    OptInConflict.ERASED: "refused: the address was erased; an import cannot opt it back in",
    OptInConflict.COMPLAINED: (
        "refused: a complaint was recorded; an import cannot opt it back in"
    ),
    OptInConflict.OPTED_OUT: "refused: the address opted out; an import cannot opt it back in",
    OptInConflict.HASHED_SUPPRESSION: "refused: the address is on an imported suppression list",
}


@dataclass(frozen=True)
class _ChunkFacts:
    """The re-subscribe rule's facts about an opt-in row, as the chunk read them."""

    row: ImportRow
    was_erased: bool
    has_complaint: bool
    opt_outs: dict[str, datetime]  # the subject's opted-out purposes
    on_hashed_list: bool

    def erased(self) -> bool:
        return self.was_erased

    def complained(self) -> bool:
        return self.has_complaint

    def opted_out_before(self) -> bool:
        return overrides_opt_out(self.row.purpose, self.row.occurred_at, self.opt_outs)

    def hashed_suppression(self) -> bool:
        return self.on_hashed_list
