"""decision_inputs on SQLite: a WITHOUT ROWID table, clustered on the keyed index

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 12:40:00.000000

A check reads one `decision_inputs` row per address by its keyed index. In an
ordinary SQLite table that is two B-tree searches: the primary key's index
gives a rowid, then the table is searched for the row. WITHOUT ROWID stores the
row in the primary key's own B-tree, so the read is one search. Measured on a
200,000-subject store (45,000 keys a query, the check's own SELECT): 0.37 s
before, 0.16 s after.

SQLite cannot change this in place: the table is copied into a new one and
renamed. The triggers that keep it (migrations 0007 and 0013) name it in their
bodies, so they are set aside and recreated with their exact stored text.
PostgreSQL has no such table kind; nothing changes there.

A later migration that rebuilds this table on SQLite (alembic's batch mode
does) must keep `sqlite_with_rowid=False`, as the model says.
"""

import re
from collections.abc import Sequence

from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    _rebuild(without_rowid=True)


def downgrade() -> None:
    _rebuild(without_rowid=False)


def _rebuild(without_rowid: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    (table_sql,) = bind.exec_driver_sql(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'decision_inputs'"
    ).one()
    triggers = bind.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
        "AND sql LIKE '%decision_inputs%' ORDER BY name"
    ).all()
    # SQLite keeps the text as written: a renamed table's name is quoted.
    head = re.match(r'CREATE TABLE "?decision_inputs"?\s*\(', table_sql)
    if head is None:
        raise RuntimeError(f"unexpected definition of decision_inputs: {table_sql[:60]!r}")
    columns = table_sql[head.end() - 1 :].rstrip().removesuffix("WITHOUT ROWID").rstrip()
    new_sql = "CREATE TABLE decision_inputs_rebuilt " + columns
    if without_rowid:
        new_sql += " WITHOUT ROWID"
    for name, _ in triggers:
        bind.exec_driver_sql(f'DROP TRIGGER "{name}"')
    bind.exec_driver_sql(new_sql)
    # In key order: the clustered B-tree is then filled from left to right.
    bind.exec_driver_sql(
        "INSERT INTO decision_inputs_rebuilt SELECT * FROM decision_inputs ORDER BY email_index"
    )
    bind.exec_driver_sql("DROP TABLE decision_inputs")
    bind.exec_driver_sql("ALTER TABLE decision_inputs_rebuilt RENAME TO decision_inputs")
    for _, sql in triggers:
        bind.exec_driver_sql(sql)
