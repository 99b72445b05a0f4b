"""A chunk of an import prepared for writing, without the database.

The reading thread (`batching.ReadAhead`) runs this while the writer
(services/imports/importer.py) writes the previous chunk: each plain address indexed and
sealed once, the subject rows to create or find, and each event's link parts but
for its place in the chain, with its evidence sealed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from suppression.domain.chain import SALT_BYTES, LinkEncoder
from suppression.domain.event_rows import EventRow, PreparedLink
from suppression.domain.jurisdictions import CountrySource
from suppression.domain.policy import ConsentStatus, EventAction
from suppression.domain.vault import AddressVault
from suppression.services.imports.rows import OPTED_OUT, ImportRow

_HINT = int(CountrySource.HINT)
_NO_HINT = (None, None, None)
SUBJECT_COLUMNS = (
    "email_index",
    "email_sealed",
    "created_at",
    "last_communication_at",
    "country",
    "country_source",
    "country_changed_at",
)
# The event of an imported row records its status.
ACTION_OF = {status: EventAction(status.value) for status in ConsentStatus}


@dataclass
class PreparedChunk:
    """Up to CHUNK rows of the CSV, validated, with the stored forms of their addresses."""

    rows: int
    good: list[ImportRow]
    rejected: list[tuple[int, str]]
    # canonical address -> (keyed index, sealed address), for the plain rows
    addresses: dict[str, tuple[bytes, bytes]]
    # line -> what the chain needs of the plain row's event, but its place in it,
    # and its evidence sealed
    links: dict[int, PreparedLink]
    # the subjects to create or find, in SUBJECT_COLUMNS order (see `_subjects`)
    subject_rows: list[tuple[Any, ...]]
    # the addresses whose subject, if new, is created with its country
    created_with_country: set[str]


class ChunkPreparer:
    """What the writer needs of a chunk but the database, and the events of its
    accepted rows (the values `_link_parts` hashed)."""

    def __init__(self, vault: AddressVault, actor: str, now: datetime, import_id: int):
        self.vault = vault
        self.actor = actor
        self.now = now
        self.import_id = import_id
        self._encoder = LinkEncoder()

    def prepare(self, chunk: list[ImportRow | tuple[int, str]]) -> PreparedChunk:
        """Everything of a chunk that needs no database (the reading thread runs
        this): each plain address indexed and sealed once, and its event's link
        parts (salt, personal digest, fields) but for its place in the chain, and
        its evidence sealed."""
        good = [row for row in chunk if type(row) is ImportRow]
        vault = self.vault
        addresses: dict[str, tuple[bytes, bytes]] = {}
        plain = []
        for row in good:
            canonical = row.canonical
            if canonical is not None:
                plain.append(row)
                if canonical not in addresses:
                    addresses[canonical] = (vault.index(canonical), vault.seal(canonical))
        subject_rows, created_with_country = self._subjects(plain, addresses)
        return PreparedChunk(
            len(chunk),
            good,
            [row for row in chunk if not isinstance(row, ImportRow)],
            addresses,
            self._link_parts(plain),
            subject_rows,
            created_with_country,
        )

    def _subjects(
        self, rows: list[ImportRow], addresses: dict[str, tuple[bytes, bytes]]
    ) -> tuple[list[tuple[Any, ...]], set[str]]:
        """The subject rows to upsert, and the addresses whose row carries a country."""
        # An opt-out is always accepted, so its time can move the subject's last
        # communication in the same statement that creates or finds the subject;
        # and a new subject whose country hints all come with opt-outs is created
        # with the newest of them (rather than updated: a second version of every row).
        latest_out: dict[str, datetime] = {}
        # canonical -> (country, country_source, country_changed_at) of its creation
        hinted: dict[str, tuple[str, int, datetime]] = {}
        unhinted: set[str] = set()
        for row in rows:
            canonical = row.canonical
            assert canonical is not None, "plain rows only"
            if row.status == OPTED_OUT:
                held = latest_out.get(canonical)
                if held is None or held < row.occurred_at:
                    latest_out[canonical] = row.occurred_at
                if row.country is not None:
                    hint = hinted.get(canonical)
                    if hint is None or hint[2] <= row.occurred_at:
                        hinted[canonical] = (row.country, _HINT, row.occurred_at)
            elif row.country is not None:
                unhinted.add(canonical)
        for canonical in unhinted:
            hinted.pop(canonical, None)
        now = self.now
        # In index order: the unique index on email_index takes them left to right,
        # page after page, instead of at random places all over a large index.
        subject_rows = sorted(
            (index, sealed, now, latest_out.get(canonical), *hinted.get(canonical, _NO_HINT))
            for canonical, (index, sealed) in addresses.items()
        )
        return subject_rows, set(hinted)

    def _link_parts(self, rows: list[ImportRow]) -> dict[int, PreparedLink]:
        """`prepare_links` of the rows' events (as `_event` makes them), by line:
        all but the subject, which the chain parts do not cover."""
        salts = os.urandom(SALT_BYTES * len(rows))
        parts, actor, now, import_id = self._encoder.parts, self.actor, self.now, self.import_id
        links = [
            parts(
                salts[at * SALT_BYTES : (at + 1) * SALT_BYTES],
                ACTION_OF[row.status],
                row.purpose,
                row.source,
                actor,
                row.occurred_at,
                now,
                None,
                None,
                None,
                None,
                {"import_id": import_id, "line": row.line},
                row.country,
            )
            for at, row in enumerate(rows)
        ]
        sealed = self.vault.seal_evidence_batch([link.evidence for link in links])
        return {
            row.line: PreparedLink(link, evidence)
            for row, link, evidence in zip(rows, links, sealed, strict=True)
        }

    def event(self, row: ImportRow, subject_id: int) -> EventRow:
        """The event of an accepted row (`_link_parts` hashes the same values)."""
        return EventRow(
            subject_id,
            ACTION_OF[row.status],
            row.purpose,
            row.source,
            self.actor,
            row.occurred_at,
            self.now,
            row.country,
            {"import_id": self.import_id, "line": row.line},
        )
