"""Re-sealing under the newest sealing key, so that an old key can be dropped.

`ADDRESS_SEALING_KEYS` holds several keys: the highest id seals, every held id
opens. After a new key is added, `suppression keys reseal` opens every ciphertext
sealed with another key and seals it again with the newest, column by column in
batches; once it reports nothing left under an old key, that key can be removed
from the setting. The plaintexts do not change, so the event chain (whose digest
covers evidence in clear) verifies as before.

A ciphertext that no held key opens is counted and left as it is: dropping the key
it needs would make it unreadable for good.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from sqlalchemy import Column, Table, select, update
from sqlalchemy.orm import Session

from suppression.domain.sealing import SealError
from suppression.domain.vault import AddressVault
from suppression.store.models import ConsentEvent, OneClickIntake, OptInRequest, Subject
from suppression.store.models.destinations import Destination

BATCH = 1000


class Sealed(StrEnum):
    ADDRESS = "address"  # an address or a secret: no associated data
    EVIDENCE = "evidence"  # canonical JSON, bound to the evidence context


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    key: str  # the primary key column
    column: str
    kind: Sealed

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"


SEALED_COLUMNS = (
    SealedColumn(Subject.__table__, "id", "email_sealed", Sealed.ADDRESS),
    SealedColumn(ConsentEvent.__table__, "id", "evidence_sealed", Sealed.EVIDENCE),
    SealedColumn(OneClickIntake.__table__, "id", "email_sealed", Sealed.ADDRESS),
    SealedColumn(OptInRequest.__table__, "id", "email_sealed", Sealed.ADDRESS),
    SealedColumn(OptInRequest.__table__, "id", "request_sealed", Sealed.EVIDENCE),
    SealedColumn(Destination.__table__, "name", "credential_sealed", Sealed.ADDRESS),
)


@dataclass
class ResealReport:
    resealed: Counter[str] = field(default_factory=Counter)  # per column
    current: Counter[str] = field(default_factory=Counter)  # already under the newest key
    unreadable: Counter[str] = field(default_factory=Counter)  # no held key opens them
    by_key: Counter[int] = field(default_factory=Counter)  # what was found, per key id

    @property
    def old_keys_in_use(self) -> set[int]:
        """Key ids still needed after this run (nothing resealed on a dry run)."""
        return {key_id for key_id, count in self.by_key.items() if count}


def _reseal_one(vault: AddressVault, kind: Sealed, sealed: bytes) -> bytes:
    if kind == Sealed.EVIDENCE:
        return vault.seal_evidence(vault.open_evidence(sealed))
    return vault.seal(vault.open(sealed))


def reseal_batch(
    session: Session,
    vault: AddressVault,
    target: SealedColumn,
    after: object | None,
    report: ResealReport,
    dry_run: bool = False,
    limit: int = BATCH,
) -> object | None:
    """One batch of `target`'s rows after primary key `after`: re-sealed (unless a dry
    run) where another key sealed them. Returns the last key read, or None when the
    column is done. Flushes; the caller commits."""
    key: Column[object] = target.table.c[target.key]
    value: Column[bytes] = target.table.c[target.column]
    query = select(key, value).where(value.is_not(None)).order_by(key).limit(limit)
    if after is not None:
        query = query.where(key > after)
    rows = session.execute(query).all()
    current = vault.sealer.current
    changes = []
    for row_key, sealed in rows:
        sealed = bytes(sealed)
        key_id = vault.sealer.sealed_with(sealed)
        if key_id == current:
            report.current[target.name] += 1
            continue
        try:
            fresh = _reseal_one(vault, target.kind, sealed)
        except SealError:
            report.unreadable[target.name] += 1
            report.by_key[key_id] += 1
            continue
        if dry_run:
            report.by_key[key_id] += 1
        else:
            changes.append((row_key, fresh))
        report.resealed[target.name] += 1
    for row_key, fresh in changes:
        session.execute(update(target.table).where(key == row_key).values({target.column: fresh}))
    session.flush()
    return rows[-1][0] if len(rows) == limit else None


def reseal_steps(
    session: Session, vault: AddressVault, report: ResealReport, dry_run: bool = False
) -> Iterator[SealedColumn]:
    """Every sealed column, batch by batch; yields the column after each flushed
    batch, where the caller (the edge) commits."""
    for target in SEALED_COLUMNS:
        after: object | None = None
        while True:
            after = reseal_batch(session, vault, target, after, report, dry_run)
            yield target
            if after is None:
                break
