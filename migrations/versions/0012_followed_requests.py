"""destination outbox: the platform request a row waits on (accepted, processed later)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = suppression.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("destination_outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=1000), nullable=True))
        batch_op.add_column(sa.Column("request_operation", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("request_reason", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("requested_at", TIME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("destination_outbox", schema=None) as batch_op:
        batch_op.drop_column("requested_at")
        batch_op.drop_column("request_reason")
        batch_op.drop_column("request_operation")
        batch_op.drop_column("request_id")
