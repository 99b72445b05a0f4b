"""reconcile progress: where a full reconcile resumes, and which worker runs it

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 21:30:00.000000

A new destination's first sync pushes the reconcile's own decisions: each chunk
of subjects is queued with its rows leased to the reconciling worker, which
pushes them at once. The row here moves past each chunk in the same transaction,
so a worker killed mid-reconcile is followed by one that continues after the
last chunk queued (the drain pushes that chunk's rows once their lease ends).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = suppression.store.schema.UTCDateTime(timezone=True)
ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "reconcile_progress",
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("after_subject_id", ID, nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.ForeignKeyConstraint(
            ["destination"],
            ["destinations.name"],
            name=op.f("fk_reconcile_progress_destination_destinations"),
        ),
        sa.PrimaryKeyConstraint("destination", name=op.f("pk_reconcile_progress")),
    )


def downgrade() -> None:
    op.drop_table("reconcile_progress")
