"""list checks in the access log: the purpose checked and the list's row count

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 07:30:00.000000

A staff member's or operator's check of a whole send list is one access-log
entry: who, when, the purpose and how many rows, never an address.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purpose", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("row_count", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_column("row_count")
        batch_op.drop_column("purpose")
