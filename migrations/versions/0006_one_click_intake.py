"""one-click intake: unsubscribes accepted, not yet folded into the event chain

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 17:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "one_click_intake",
        sa.Column("id", ID, nullable=False),
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=False),
        sa.Column(
            "occurred_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("user_agent", sa.String(length=500), nullable=True),
        sa.Column("campaign", sa.String(length=200), nullable=True),
        sa.Column("evidence", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_one_click_intake")),
    )
    with op.batch_alter_table("one_click_intake", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_one_click_intake_email_index"), ["email_index"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("one_click_intake", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_one_click_intake_email_index"))
    op.drop_table("one_click_intake")
