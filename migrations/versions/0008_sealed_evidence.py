"""sealed evidence: an event's free evidence is stored sealed, like the address

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 18:00:00.000000

`consent_events.evidence` (JSON, as sent: often a reply or a form's text holding
the address) becomes `evidence_sealed`: its canonical JSON (the bytes the chain's
personal digest covers, so the chain verifies as before) sealed with the current
sealing key. The keys come from the caller, `database.upgrade(url, sealer=...)`
(`suppression db upgrade` and `serve` pass the configured ones), through
Alembic's `config.attributes`; a database holding evidence cannot be upgraded
without them. An empty one needs none.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import context, op

from suppression.domain.chain import canonical_json

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEALER = "evidence_sealer"  # the key of config.attributes holding an AddressSealer
BATCH = 5000

EVENTS = sa.table(
    "consent_events",
    sa.column("id", sa.BigInteger()),
    sa.column("evidence", sa.Text()),
    sa.column("evidence_sealed", sa.LargeBinary()),
)
# SQL NULL, or JSON null (what the ORM wrote for "no evidence"): nothing to seal.
HAS_EVIDENCE = sa.and_(
    EVENTS.c.evidence.is_not(None), sa.cast(EVENTS.c.evidence, sa.Text()) != "null"
)


def upgrade() -> None:
    connection = op.get_bind()
    sealer = context.config.attributes.get(SEALER)
    if sealer is None and connection.scalar(sa.select(EVENTS.c.id).where(HAS_EVIDENCE).limit(1)):
        raise RuntimeError(
            "migration 0008 seals the evidence already stored and needs the sealing keys: "
            "run `suppression db upgrade` (or `serve`) with ADDRESS_SEALING_KEYS set as the "
            "service runs, or call database.upgrade(url, sealer=...)"
        )
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("evidence_sealed", sa.LargeBinary(), nullable=True))
    if sealer is not None:
        _seal_stored_evidence(connection, sealer)
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_column("evidence")


def _seal_stored_evidence(connection: sa.Connection, sealer) -> None:
    """Each event's evidence sealed, in batches by id; the plaintext is cleared
    in the same statement (its column is then dropped)."""
    seal = sa.text(
        "UPDATE consent_events SET evidence_sealed = :sealed, evidence = NULL WHERE id = :id"
    ).bindparams(sa.bindparam("sealed", type_=sa.LargeBinary()))
    last = 0
    while True:
        rows = connection.execute(
            sa.select(EVENTS.c.id, sa.cast(EVENTS.c.evidence, sa.Text()))
            .where(HAS_EVIDENCE, EVENTS.c.id > last)
            .order_by(EVENTS.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        connection.execute(
            seal,
            [
                {"id": event_id, "sealed": sealer.seal_evidence(canonical_json(json.loads(text)))}
                for event_id, text in rows
            ],
        )
        last = rows[-1][0]


def downgrade() -> None:
    raise RuntimeError(
        "migration 0008 is not undone: that would write every event's evidence back in "
        "clear. Restore the backup taken before the upgrade instead."
    )
