"""`decision_inputs` and the view that defines its rows (migration 0013).

`decision_inputs_projection` computes each subject's row from `subjects`,
`consent_states` and `blocks`; the database's triggers copy the rows of the
subjects every statement changed from it. On PostgreSQL a bulk writer (the
importer) may ask them to stand aside for its own statements and copy the rows
of the subjects it touched itself, once, at the end, through the function the
triggers call (`decision_inputs_refresh`): each row is then written once, not
once for every table that changed. The setting is local to the transaction
(and undone with a rolled-back savepoint), so no other writer is affected.
SQLite's row triggers always run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import TableClause, column, table, text
from sqlalchemy.orm import Session

from suppression.models import DecisionInputs
from suppression.services.dialects import dialect_name, id_array_text

# Read by the trigger functions: 'caller' makes them return at once.
SETTING = "suppression.decision_inputs"

# The view, with the table's columns (the model's, in their order).
PROJECTION: TableClause = table(
    "decision_inputs_projection",
    *(column(c.name, c.type) for c in DecisionInputs.__table__.columns),
)

_STAND_ASIDE = text("SELECT set_config(:name, :value, true)")
_REFRESH = text("SELECT decision_inputs_refresh(CAST(:ids AS bigint[]))")


class CallerKept:
    """What a bulk writer owes `decision_inputs` while the triggers stand aside."""

    def __init__(self, active: bool):
        self.active = active  # False: the triggers keep the rows (SQLite)
        self.touched: set[int] = set()  # subjects whose rows are copied from the view


@contextmanager
def rebuilt_by_caller(session: Session) -> Iterator[CallerKept]:
    """Inside the block the triggers stand aside; the caller adds the subjects it
    wrote to the CallerKept it is given, and their rows are copied from the view
    on leaving. (An exception leaves the transaction to be rolled back, writing
    nothing.)"""
    active = dialect_name(session) == "postgresql"
    kept = CallerKept(active)
    if not active:
        yield kept
        return
    session.execute(_STAND_ASIDE, {"name": SETTING, "value": "caller"})
    yield kept
    session.execute(_STAND_ASIDE, {"name": SETTING, "value": ""})
    if kept.touched:
        session.execute(_REFRESH, {"ids": id_array_text(sorted(kept.touched))})
