"""staff session generation: sign-out ends every copy of a session cookie

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 10:00:00.000000

The signed session cookie carries the account's generation; sign-out, a password
change and disabling the account raise it, and a cookie of an older generation is
refused. It replaces the fingerprint of the password hash the cookie used to carry.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("session_generation", sa.Integer(), server_default="0", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("session_generation")
