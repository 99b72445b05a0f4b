"""mass-unsubscribe alarms and their per-minute tallies

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 15:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "unsubscribe_alarms",
        sa.Column("id", ID, nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("raised_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_unsubscribe_alarms")),
    )
    with op.batch_alter_table("unsubscribe_alarms", schema=None) as batch_op:
        batch_op.create_index(
            "ix_unsubscribe_alarms_domain_campaign",
            ["domain", "campaign", "last_at"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_unsubscribe_alarms_raised_at"), ["raised_at"], unique=False
        )

    op.create_table(
        "unsubscribe_tallies",
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("campaign", sa.String(length=200), nullable=False),
        sa.Column("minute_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("first_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint(
            "domain", "campaign", "minute_at", name=op.f("pk_unsubscribe_tallies")
        ),
    )
    with op.batch_alter_table("unsubscribe_tallies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_unsubscribe_tallies_minute_at"), ["minute_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("unsubscribe_tallies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsubscribe_tallies_minute_at"))
    op.drop_table("unsubscribe_tallies")
    with op.batch_alter_table("unsubscribe_alarms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_unsubscribe_alarms_raised_at"))
        batch_op.drop_index("ix_unsubscribe_alarms_domain_campaign")
    op.drop_table("unsubscribe_alarms")
