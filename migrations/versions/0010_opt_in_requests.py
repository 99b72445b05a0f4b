"""opt-in requests: double opt-in from the preference page, and its mail outbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = suppression.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "opt_in_requests",
        sa.Column("id", ID, nullable=False),
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("email_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("purposes", sa.String(length=1000), nullable=False),
        sa.Column("requested_at", TIME, nullable=False),
        sa.Column("request_sealed", sa.LargeBinary(), nullable=False),
        sa.Column("confirmed_at", TIME, nullable=True),
        sa.Column("mail_attempts", sa.Integer(), nullable=False),
        sa.Column("mail_available_at", TIME, nullable=True),
        sa.Column("mail_claimed_until", TIME, nullable=True),
        sa.Column("mail_sent_at", TIME, nullable=True),
        sa.Column("mail_failed_at", TIME, nullable=True),
        sa.Column("mail_error", sa.String(length=200), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_opt_in_requests")),
    )
    with op.batch_alter_table("opt_in_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_opt_in_requests_email_index_requested_at",
            ["email_index", "requested_at"],
            unique=False,
        )
        batch_op.create_index("ix_opt_in_requests_requested_at", ["requested_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("opt_in_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_opt_in_requests_requested_at")
        batch_op.drop_index("ix_opt_in_requests_email_index_requested_at")
    op.drop_table("opt_in_requests")
