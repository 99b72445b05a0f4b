"""decision inputs: one view defines the row; the triggers copy it from there

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-04 16:40:00.000000

`decision_inputs_projection` is the one definition of a subject's `decision_inputs`
row, computed from `subjects`, `consent_states` and `blocks`. The triggers of 0007
keep their names and their events but now copy the rows of the subjects a
statement changed from the view (an upsert), instead of each patching its own
columns; the importer (store/decision_inputs.py) upserts from the same view.
`tests/integration/test_decision_inputs.py` compares the table with the view.
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VIEW = "decision_inputs_projection"
# The table's columns in its order; the view has the same.
SUBJECT_COLUMNS = (
    "country",
    "country_source",
    "erased_at",
    "last_purchase_at",
    "last_inquiry_at",
)
COLUMNS = ("email_index", "subject_id", *SUBJECT_COLUMNS, "blocks", "consents")

# Per subject: active block kinds sorted and comma-separated, and
# {purpose: [status, changed_at]} of its consent states; NULL when there is none.
_AGGREGATES = {
    "postgresql": (
        """SELECT string_agg(b.kind, ',' ORDER BY b.kind) FROM blocks b
            WHERE b.subject_id = s.id AND b.is_active""",
        """SELECT jsonb_object_agg(c.purpose, jsonb_build_array(c.status, c.changed_at))
            FROM consent_states c WHERE c.subject_id = s.id""",
    ),
    "sqlite": (
        """SELECT group_concat(kind, ',') FROM (SELECT b.kind FROM blocks b
            WHERE b.subject_id = s.id AND b.is_active ORDER BY b.kind)""",
        """SELECT CASE WHEN count(*) THEN
            json_group_object(c.purpose, json_array(c.status, c.changed_at)) END
            FROM consent_states c WHERE c.subject_id = s.id""",
    ),
}


def view_sql(dialect: str) -> str:
    blocks, consents = _AGGREGATES[dialect]
    subject = ", ".join(f"s.{name}" for name in SUBJECT_COLUMNS)
    # Correlated subqueries: a filter on subject_id reaches the state tables by
    # their indexes, so copying a few subjects' rows reads only theirs.
    return (
        f"CREATE VIEW {VIEW} ({', '.join(COLUMNS)}) AS\n"
        f"SELECT s.email_index, s.id, {subject},\n    ({blocks}),\n    ({consents})\n"
        "FROM subjects s"
    )


def upsert_sql(subject_ids: str) -> str:
    """Copy the view's rows of `subject_ids` (a subquery or a list) into the table."""
    names = ", ".join(COLUMNS)
    assign = ", ".join(f"{name} = excluded.{name}" for name in COLUMNS if name != "subject_id")
    return (
        f"INSERT INTO decision_inputs ({names}) SELECT {names} FROM {VIEW}\n"
        f"WHERE subject_id IN ({subject_ids})\n"
        f"ON CONFLICT (subject_id) DO UPDATE SET {assign}"
    )


# --- PostgreSQL: the functions of 0007, fired once per statement. ---
# A bulk writer may copy the rows itself (store/decision_inputs.py).
PG_STAND_ASIDE = """
    IF current_setting('suppression.decision_inputs', true) = 'caller' THEN
        RETURN NULL;
    END IF;"""
# Locks the subjects' rows first: a writer that waited for another's commit then
# reads the view afresh (a new statement's snapshot), never a version without
# the other's change. Without JIT: compiling the view's subqueries for an import
# chunk (50,000 subjects) took longer than running them (0.55 s of 1.8 s).
PG_REFRESH = f"""
CREATE FUNCTION decision_inputs_refresh(ids bigint[]) RETURNS void LANGUAGE plpgsql
SET jit = off AS $$
BEGIN
    PERFORM 1 FROM decision_inputs WHERE subject_id IN (SELECT unnest(ids))
        ORDER BY subject_id FOR UPDATE;
    {upsert_sql("SELECT unnest(ids)")};
END$$"""
_CHANGED = " OR ".join(f"n.{c} IS DISTINCT FROM o.{c}" for c in ("email_index", *SUBJECT_COLUMNS))
_STATE_IDS = """
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT DISTINCT subject_id FROM new_rows);
    ELSIF TG_OP = 'UPDATE' THEN
        ids := ARRAY(SELECT subject_id FROM new_rows UNION SELECT subject_id FROM old_rows);
    ELSE
        ids := ARRAY(SELECT DISTINCT subject_id FROM old_rows);
    END IF;"""
PG_FUNCTIONS = {
    "subjects": f"""
DECLARE ids bigint[];
BEGIN{PG_STAND_ASIDE}
    IF TG_OP = 'INSERT' THEN
        ids := ARRAY(SELECT id FROM new_rows);
    ELSE
        ids := ARRAY(SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
                     WHERE {_CHANGED});
    END IF;
    IF cardinality(ids) > 0 THEN
        PERFORM decision_inputs_refresh(ids);
    END IF;
    RETURN NULL;
END""",
    "consent_states": f"""
DECLARE ids bigint[];
BEGIN{PG_STAND_ASIDE}{_STATE_IDS}
    PERFORM decision_inputs_refresh(ids);
    RETURN NULL;
END""",
    "blocks": f"""
DECLARE ids bigint[];
BEGIN{PG_STAND_ASIDE}{_STATE_IDS}
    PERFORM decision_inputs_refresh(ids);
    RETURN NULL;
END""",
}


# --- SQLite: row triggers, each copying its subject's row from the view. ---
# A new subject's row is inserted; every other change rewrites the row in place
# (an upsert here costs SQLite half as much again as the whole write).
def _sqlite_insert(row: str) -> str:
    names = ", ".join(COLUMNS)
    return (
        f"INSERT INTO decision_inputs ({names}) SELECT {names} FROM {VIEW}\n"
        f"WHERE subject_id = {row}.id;"
    )


def _sqlite_rewrite(subject_ids: str, keys: bool = False) -> str:
    """The rows of `subject_ids` set from the view; the keys only when a subject's
    own columns changed."""
    names = ", ".join(c for c in COLUMNS if c != "subject_id" and (keys or c != "email_index"))
    return (
        f"UPDATE decision_inputs SET ({names}) = (SELECT {names} FROM {VIEW} p\n"
        "    WHERE p.subject_id = decision_inputs.subject_id)\n"
        f"WHERE subject_id IN ({subject_ids});"
    )


_SUBJECT_CHANGED = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in ("email_index", *SUBJECT_COLUMNS))
SQLITE_TRIGGERS = {
    "decision_inputs_subject_inserted": "AFTER INSERT ON subjects BEGIN\n"
    + _sqlite_insert("NEW")
    + "\nEND",
    "decision_inputs_subject_updated": (
        f"AFTER UPDATE OF email_index, {', '.join(SUBJECT_COLUMNS)} ON subjects\n"
        f"WHEN {_SUBJECT_CHANGED} BEGIN\n" + _sqlite_rewrite("NEW.id", keys=True) + "\nEND"
    ),
    "decision_inputs_subject_deleted": """AFTER DELETE ON subjects BEGIN
DELETE FROM decision_inputs WHERE subject_id = OLD.id;
END""",
}
for _table, _name in (("consent_states", "consent"), ("blocks", "block")):
    SQLITE_TRIGGERS |= {
        f"decision_inputs_{_name}_inserted": f"AFTER INSERT ON {_table} BEGIN\n"
        + _sqlite_rewrite("NEW.subject_id")
        + "\nEND",
        f"decision_inputs_{_name}_updated": f"AFTER UPDATE ON {_table} BEGIN\n"
        + _sqlite_rewrite("OLD.subject_id, NEW.subject_id")
        + "\nEND",
        f"decision_inputs_{_name}_deleted": f"AFTER DELETE ON {_table} BEGIN\n"
        + _sqlite_rewrite("OLD.subject_id")
        + "\nEND",
    }


def _pg_create_functions(functions: dict[str, str]) -> None:
    for table, body in functions.items():
        op.execute(
            f"CREATE OR REPLACE FUNCTION decision_inputs_from_{table}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $${body}$$"
        )


def _sqlite_create_triggers(triggers: dict[str, str]) -> None:
    for name, body in triggers.items():
        op.execute(f"DROP TRIGGER {name}")
        op.execute(f"CREATE TRIGGER {name} {body}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.execute(view_sql(dialect))
    if dialect == "postgresql":
        op.execute(PG_REFRESH)
        _pg_create_functions(PG_FUNCTIONS)
    else:
        _sqlite_create_triggers(SQLITE_TRIGGERS)


def _revision_0007():  # type: ignore[no-untyped-def]
    path = Path(__file__).with_name("0007_decision_inputs.py")
    spec = importlib.util.spec_from_file_location("revision_0007", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def downgrade() -> None:
    previous = _revision_0007()
    if op.get_bind().dialect.name == "postgresql":
        _pg_create_functions(previous.PG_FUNCTIONS)
        op.execute("DROP FUNCTION decision_inputs_refresh(bigint[])")
    else:
        _sqlite_create_triggers(previous.SQLITE_TRIGGERS)
    op.execute(f"DROP VIEW {VIEW}")
