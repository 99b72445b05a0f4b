"""The hashed suppression list for third parties: `email_sha256,reason,changed_at`.

Addresses are opened only in memory to hash them; erased subjects no longer have
an address and cannot appear (their keyed index is not a shareable hash).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from suppression.domain.addresses import sha256_hex
from suppression.domain.policy import ALL_PURPOSES, BlockKind, ConsentStatus, Reason
from suppression.domain.vault import AddressVault
from suppression.store.models import Block, ConsentState, HashedSuppression, Subject

# A subject's strongest suppression, in API.md's order.
BLOCK_REASONS = (
    (BlockKind.COMPLAINT.value, Reason.COMPLAINED),
    (BlockKind.HARD_BOUNCE.value, Reason.BOUNCED),
)
RESTRICTING = (BlockKind.RESTRICTION.value, BlockKind.OBJECTION.value)


def suppression_rows(
    session: Session, vault: AddressVault, purpose: str, batch: int = 5000
) -> Iterator[tuple[str, str, datetime]]:
    """(sha256 hex, reason, changed_at) per suppressed address, then the imported hashes."""
    last_id = 0
    purposes = (purpose, ALL_PURPOSES)
    while True:
        subjects = session.execute(
            select(Subject.id, Subject.email_sealed)
            .where(
                Subject.id > last_id,
                Subject.email_sealed.is_not(None),
                or_(
                    Subject.id.in_(
                        select(ConsentState.subject_id).where(
                            ConsentState.status == ConsentStatus.OPTED_OUT.value,
                            ConsentState.purpose.in_(purposes),
                        )
                    ),
                    Subject.id.in_(select(Block.subject_id).where(Block.is_active.is_(True))),
                ),
            )
            .order_by(Subject.id)
            .limit(batch)
        ).all()
        if not subjects:
            break
        ids = [subject_id for subject_id, _ in subjects]
        states: dict[int, dict[str, tuple[str, datetime]]] = {}
        for subject_id, state_purpose, status, changed_at in session.execute(
            select(
                ConsentState.subject_id,
                ConsentState.purpose,
                ConsentState.status,
                ConsentState.changed_at,
            ).where(ConsentState.subject_id.in_(ids), ConsentState.purpose.in_(purposes))
        ):
            states.setdefault(subject_id, {})[state_purpose] = (status, changed_at)
        blocks: dict[int, dict[str, datetime]] = {}
        for subject_id, kind, changed_at in session.execute(
            select(Block.subject_id, Block.kind, Block.changed_at).where(
                Block.subject_id.in_(ids), Block.is_active.is_(True)
            )
        ):
            blocks.setdefault(subject_id, {})[kind] = changed_at
        for subject_id, sealed in subjects:
            found = _strongest(states.get(subject_id, {}), blocks.get(subject_id, {}), purpose)
            # `sealed` is never None: the query takes sealed addresses only.
            if found is not None and sealed is not None:
                yield sha256_hex(vault.open(sealed)), found[0].value, found[1]
        last_id = ids[-1]
        session.expunge_all()
    for hashed in session.scalars(
        select(HashedSuppression).order_by(HashedSuppression.email_sha256)
    ):
        yield hashed.email_sha256.hex(), Reason.OPTED_OUT.value, hashed.changed_at


def _strongest(
    states: dict[str, tuple[str, datetime]], blocks: dict[str, datetime], purpose: str
) -> tuple[Reason, datetime] | None:
    for kind, reason in BLOCK_REASONS:
        if kind in blocks:
            return reason, blocks[kind]
    # The newer of the purpose's own state and the `all` state holds.
    current = max(
        (states[p] for p in (purpose, ALL_PURPOSES) if p in states),
        key=lambda state: state[1],
        default=None,
    )
    if current is not None and current[0] == ConsentStatus.OPTED_OUT.value:
        return Reason.OPTED_OUT, current[1]
    restricting = [blocks[kind] for kind in RESTRICTING if kind in blocks]
    if restricting:
        return Reason.RESTRICTED, min(restricting)
    return None
