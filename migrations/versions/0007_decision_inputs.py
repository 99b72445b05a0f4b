"""decision inputs: one narrow row per subject for the checks, kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29 19:30:00.000000

A check used to look up four indexes per address (subjects, two consent_states
rows, blocks). `decision_inputs` holds the same facts in one row found by the
keyed index. The database keeps it, in the statement that writes `subjects`,
`consent_states` or `blocks`: PostgreSQL with statement-level triggers over the
changed rows (one set-based statement for a bulk import), SQLite with row
triggers. The same trigger bodies are tested on both databases by the whole
suite, and `tests/integration/test_decision_inputs.py` compares the table with
a fresh computation after a mixed workload.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import suppression.store.schema

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SUBJECT_COLUMNS = "country, country_source, erased_at, last_purchase_at, last_inquiry_at"

# --- PostgreSQL: one function per source table, fired once per statement. ---
# A bulk writer may rebuild the rows itself (store/decision_inputs.py).
PG_STAND_ASIDE = """
    IF current_setting('suppression.decision_inputs', true) = 'caller' THEN
        RETURN NULL;
    END IF;"""
PG_FUNCTIONS = {
    "subjects": f"""
BEGIN{PG_STAND_ASIDE}
    IF TG_OP = 'INSERT' THEN
        INSERT INTO decision_inputs (email_index, subject_id, {SUBJECT_COLUMNS})
        SELECT email_index, id, {SUBJECT_COLUMNS} FROM new_rows;
    ELSE
        UPDATE decision_inputs d
        SET email_index = n.email_index, country = n.country,
            country_source = n.country_source, erased_at = n.erased_at,
            last_purchase_at = n.last_purchase_at, last_inquiry_at = n.last_inquiry_at
        FROM new_rows n JOIN old_rows o ON o.id = n.id
        WHERE d.subject_id = n.id
          AND (n.email_index, n.country, n.country_source, n.erased_at,
               n.last_purchase_at, n.last_inquiry_at)
              IS DISTINCT FROM (o.email_index, o.country, o.country_source, o.erased_at,
                                o.last_purchase_at, o.last_inquiry_at);
    END IF;
    RETURN NULL;
END""",
    # The map changes by exactly the rows changed: removed purposes go, new or
    # updated ones are set (jsonb || keeps the right-hand value of a key).
    "consent_states": f"""
BEGIN{PG_STAND_ASIDE}
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE decision_inputs d SET consents = d.consents - o.purposes
        FROM (SELECT subject_id, array_agg(purpose)::text[] AS purposes
              FROM old_rows GROUP BY subject_id) o
        WHERE d.subject_id = o.subject_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE decision_inputs d SET consents = coalesce(d.consents, '{{}}'::jsonb) || n.states
        FROM (SELECT subject_id,
                     jsonb_object_agg(purpose, jsonb_build_array(status, changed_at)) AS states
              FROM new_rows GROUP BY subject_id) n
        WHERE d.subject_id = n.subject_id;
    END IF;
    RETURN NULL;
END""",
    # Blocks are few: the active kinds are read again for each subject touched.
    "blocks": f"""
BEGIN{PG_STAND_ASIDE}
    IF TG_OP = 'INSERT' THEN
        UPDATE decision_inputs d SET blocks = (SELECT string_agg(b.kind, ',' ORDER BY b.kind)
            FROM blocks b WHERE b.subject_id = d.subject_id AND b.is_active)
        WHERE d.subject_id IN (SELECT subject_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        UPDATE decision_inputs d SET blocks = (SELECT string_agg(b.kind, ',' ORDER BY b.kind)
            FROM blocks b WHERE b.subject_id = d.subject_id AND b.is_active)
        WHERE d.subject_id IN (SELECT subject_id FROM new_rows
                               UNION SELECT subject_id FROM old_rows);
    ELSE
        UPDATE decision_inputs d SET blocks = (SELECT string_agg(b.kind, ',' ORDER BY b.kind)
            FROM blocks b WHERE b.subject_id = d.subject_id AND b.is_active)
        WHERE d.subject_id IN (SELECT subject_id FROM old_rows);
    END IF;
    RETURN NULL;
END""",
}

# --- SQLite: row triggers. ---
SQLITE_CONSENTS = """UPDATE decision_inputs SET consents = (
    SELECT json_group_object(purpose, json_array(status, changed_at))
    FROM consent_states WHERE subject_id = {row}.subject_id)
WHERE subject_id = {row}.subject_id;"""
SQLITE_BLOCKS = """UPDATE decision_inputs SET blocks = (
    SELECT group_concat(kind, ',') FROM (
        SELECT kind FROM blocks WHERE subject_id = {row}.subject_id AND is_active ORDER BY kind))
WHERE subject_id = {row}.subject_id;"""
SQLITE_TRIGGERS = {
    "decision_inputs_subject_inserted": f"""AFTER INSERT ON subjects BEGIN
INSERT INTO decision_inputs (email_index, subject_id, {SUBJECT_COLUMNS})
VALUES (NEW.email_index, NEW.id, NEW.country, NEW.country_source, NEW.erased_at,
        NEW.last_purchase_at, NEW.last_inquiry_at);
END""",
    "decision_inputs_subject_updated": f"""AFTER UPDATE OF email_index, {SUBJECT_COLUMNS}
ON subjects BEGIN
UPDATE decision_inputs SET email_index = NEW.email_index, country = NEW.country,
    country_source = NEW.country_source, erased_at = NEW.erased_at,
    last_purchase_at = NEW.last_purchase_at, last_inquiry_at = NEW.last_inquiry_at
WHERE subject_id = NEW.id;
END""",
    "decision_inputs_subject_deleted": """AFTER DELETE ON subjects BEGIN
DELETE FROM decision_inputs WHERE subject_id = OLD.id;
END""",
    "decision_inputs_consent_inserted": "AFTER INSERT ON consent_states BEGIN\n"
    + SQLITE_CONSENTS.format(row="NEW")
    + "\nEND",
    "decision_inputs_consent_updated": "AFTER UPDATE ON consent_states BEGIN\n"
    + SQLITE_CONSENTS.format(row="OLD")
    + "\n"
    + SQLITE_CONSENTS.format(row="NEW")
    + "\nEND",
    "decision_inputs_consent_deleted": "AFTER DELETE ON consent_states BEGIN\n"
    + SQLITE_CONSENTS.format(row="OLD")
    + "\nEND",
    "decision_inputs_block_inserted": "AFTER INSERT ON blocks BEGIN\n"
    + SQLITE_BLOCKS.format(row="NEW")
    + "\nEND",
    "decision_inputs_block_updated": "AFTER UPDATE ON blocks BEGIN\n"
    + SQLITE_BLOCKS.format(row="OLD")
    + "\n"
    + SQLITE_BLOCKS.format(row="NEW")
    + "\nEND",
    "decision_inputs_block_deleted": "AFTER DELETE ON blocks BEGIN\n"
    + SQLITE_BLOCKS.format(row="OLD")
    + "\nEND",
}

BACKFILL = {
    "postgresql": f"""
INSERT INTO decision_inputs (email_index, subject_id, {SUBJECT_COLUMNS}, blocks, consents)
SELECT s.email_index, s.id, {", ".join("s." + c for c in SUBJECT_COLUMNS.split(", "))},
    (SELECT string_agg(b.kind, ',' ORDER BY b.kind) FROM blocks b
     WHERE b.subject_id = s.id AND b.is_active),
    (SELECT jsonb_object_agg(c.purpose, jsonb_build_array(c.status, c.changed_at))
     FROM consent_states c WHERE c.subject_id = s.id)
FROM subjects s""",
    "sqlite": f"""
INSERT INTO decision_inputs (email_index, subject_id, {SUBJECT_COLUMNS}, blocks, consents)
SELECT s.email_index, s.id, {", ".join("s." + c for c in SUBJECT_COLUMNS.split(", "))},
    (SELECT group_concat(kind, ',') FROM (
        SELECT kind FROM blocks b WHERE b.subject_id = s.id AND b.is_active ORDER BY kind)),
    (SELECT CASE WHEN count(*) THEN json_group_object(c.purpose, json_array(c.status, c.changed_at)) END
     FROM consent_states c WHERE c.subject_id = s.id)
FROM subjects s""",
}


def upgrade() -> None:
    op.create_table(
        "decision_inputs",
        sa.Column("email_index", sa.LargeBinary(length=32), nullable=False),
        sa.Column("subject_id", ID, nullable=False),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("country_source", sa.SmallInteger(), nullable=True),
        sa.Column("erased_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_purchase_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_inquiry_at", suppression.store.schema.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("blocks", sa.String(length=100), nullable=True),
        sa.Column(
            "consents",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.ForeignKeyConstraint(
            ["subject_id"],
            ["subjects.id"],
            name=op.f("fk_decision_inputs_subject_id_subjects"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("email_index", name=op.f("pk_decision_inputs")),
        sa.UniqueConstraint("subject_id", name=op.f("uq_decision_inputs_subject_id")),
    )
    dialect = op.get_bind().dialect.name
    op.execute(BACKFILL[dialect])
    if dialect == "postgresql":
        for table, body in PG_FUNCTIONS.items():
            function = f"decision_inputs_from_{table}"
            op.execute(
                f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $${body}$$"
            )
            # A trigger with transition tables serves one event only.
            for event, referencing in (
                ("INSERT", "NEW TABLE AS new_rows"),
                ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
                ("DELETE", "OLD TABLE AS old_rows"),
            ):
                if table == "subjects" and event == "DELETE":
                    continue  # the foreign key cascades
                op.execute(
                    f"CREATE TRIGGER {function}_{event.lower()} AFTER {event} ON {table} "
                    f"REFERENCING {referencing} FOR EACH STATEMENT EXECUTE FUNCTION {function}()"
                )
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in PG_FUNCTIONS:
            op.execute(f"DROP FUNCTION decision_inputs_from_{table}() CASCADE")
    else:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("decision_inputs")
