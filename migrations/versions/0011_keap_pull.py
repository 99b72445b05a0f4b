"""keap pull: where the last pull of Keap's non-marketable addresses ended

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 14:45:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = suppression.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "keap_pull_cursors",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("high_water_at", TIME, nullable=True),
        sa.Column("pulled_at", TIME, nullable=True),
        sa.Column("completed_at", TIME, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_keap_pull_cursors")),
    )


def downgrade() -> None:
    op.drop_table("keap_pull_cursors")
