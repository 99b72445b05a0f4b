"""destinations: registry, outbox, per-subject state, push history

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 15:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import suppression.store.schema

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = suppression.store.schema.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "destinations",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("targets", sa.String(length=64), nullable=False),
        sa.Column("registered_at", TIME, nullable=False),
        sa.Column("full_requested_at", TIME, nullable=True),
        sa.Column("paused_until", TIME, nullable=True),
        sa.Column("last_success_at", TIME, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column("last_error_at", TIME, nullable=True),
        sa.Column("credential_sealed", sa.LargeBinary(), nullable=True),
        sa.Column("credential_seed", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_destinations")),
    )
    op.create_table(
        "destination_outbox",
        sa.Column("id", ID, nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("available_at", TIME, nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", TIME, nullable=True),
        sa.Column("failed_at", TIME, nullable=True),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["destination"],
            ["destinations.name"],
            name=op.f("fk_destination_outbox_destination_destinations"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_destination_outbox_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination_outbox")),
    )
    with op.batch_alter_table("destination_outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_destination_outbox_queue", ["destination", "failed_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_destination_outbox_subject", ["subject_id", "destination"], unique=False
        )

    op.create_table(
        "destination_subjects",
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("targets", sa.String(length=64), nullable=False),
        sa.Column("observed_at", TIME, nullable=False),
        sa.Column("confirmed_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["destination"],
            ["destinations.name"],
            name=op.f("fk_destination_subjects_destination_destinations"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_destination_subjects_subject_id_subjects"),
        ),
        sa.PrimaryKeyConstraint("destination", "subject_id", name=op.f("pk_destination_subjects")),
    )
    op.create_table(
        "destination_pushes",
        sa.Column("id", ID, nullable=False),
        sa.Column("destination", sa.String(length=32), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("pushed_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["destination"],
            ["destinations.name"],
            name=op.f("fk_destination_pushes_destination_destinations"),
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"], ["subjects.id"], name=op.f("fk_destination_pushes_subject_id_subjects")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_destination_pushes")),
    )
    with op.batch_alter_table("destination_pushes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_destination_pushes_subject_id"), ["subject_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("destination_pushes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_destination_pushes_subject_id"))
    op.drop_table("destination_pushes")
    op.drop_table("destination_subjects")
    with op.batch_alter_table("destination_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_destination_outbox_subject")
        batch_op.drop_index("ix_destination_outbox_queue")
    op.drop_table("destination_outbox")
    op.drop_table("destinations")
