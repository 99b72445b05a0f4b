"""staff accounts, sign-in attempts, access log

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 15:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "staff_users",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column(
            "password_changed_at",
            suppression.store.schema.UTCDateTime(timezone=True),
            nullable=False,
        ),
        sa.Column(
            "last_sign_in_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "disabled_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_users")),
        sa.UniqueConstraint("username", name=op.f("uq_staff_users_username")),
    )
    op.create_table(
        "staff_sign_in_attempts",
        sa.Column("id", ID, nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.Column(
            "attempted_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_sign_in_attempts")),
    )
    with op.batch_alter_table("staff_sign_in_attempts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_staff_sign_in_attempts_username_at", ["username", "attempted_at"], unique=False
        )
        batch_op.create_index(
            "ix_staff_sign_in_attempts_ip_at", ["ip", "attempted_at"], unique=False
        )

    op.create_table(
        "access_log",
        sa.Column("id", ID, nullable=False),
        sa.Column(
            "occurred_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("channel", sa.String(length=8), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("subject_id", ID, nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_access_log_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_log")),
    )
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.create_index(
            "ix_access_log_subject_at", ["subject_id", "occurred_at"], unique=False
        )
        batch_op.create_index("ix_access_log_occurred_at", ["occurred_at"], unique=False)

    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_consent_events_action_occurred_at", ["action", "occurred_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("consent_events", schema=None) as batch_op:
        batch_op.drop_index("ix_consent_events_action_occurred_at")
    with op.batch_alter_table("access_log", schema=None) as batch_op:
        batch_op.drop_index("ix_access_log_occurred_at")
        batch_op.drop_index("ix_access_log_subject_at")
    op.drop_table("access_log")
    with op.batch_alter_table("staff_sign_in_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_staff_sign_in_attempts_ip_at")
        batch_op.drop_index("ix_staff_sign_in_attempts_username_at")
    op.drop_table("staff_sign_in_attempts")
    op.drop_table("staff_users")
