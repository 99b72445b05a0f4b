"""feedback receipts: the platform event ids and signing nonces already received

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 20:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = suppression.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "feedback_receipts",
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("key_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("received_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("platform", "key_digest", name=op.f("pk_feedback_receipts")),
    )
    op.create_index(op.f("ix_feedback_receipts_received_at"), "feedback_receipts", ["received_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_feedback_receipts_received_at"), table_name="feedback_receipts")
    op.drop_table("feedback_receipts")
