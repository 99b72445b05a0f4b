"""`decision_inputs` and the view that defines its rows (migration 0013).

`decision_inputs_projection` computes each subject's row from `subjects`,
`consent_states` and `blocks`; the database's triggers copy the rows of the
subjects every statement changed from it. On PostgreSQL a bulk writer (the
importer, the one-click fold, a batch of blocks) may ask them to stand aside for its own statements
and copy the rows of the subjects it touched itself from the view, once, at the
end: each row is then written once, not once for every statement that changed
it. The setting is local to the transaction (and undone with a rolled-back
savepoint), so no other writer is affected.
SQLite's row triggers always run.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import TableClause, column, select, table, text
from sqlalchemy.orm import Session

from suppression.store.dialects import among, dialect_name, insert
from suppression.store.models import DecisionInputs

# Read by the trigger functions: 'caller' makes them return at once.
SETTING = "suppression.decision_inputs"

# The view, with the table's columns (the model's, in their order).
PROJECTION: TableClause = table(
    "decision_inputs_projection",
    *(column(c.name, c.type) for c in DecisionInputs.__table__.columns),
)

_STAND_ASIDE = text("SELECT set_config(:name, :value, true)")


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
        copy_from_view(session, sorted(kept.touched))


def copy_from_view(session: Session, subject_ids: list[int]) -> None:
    """Upsert the view's rows of these subjects into the table. Unlike the
    triggers' `decision_inputs_refresh` it takes no lock on the rows first: the
    bulk writers call it holding the chain head, which every writer of
    the state tables takes (services/consents/events.py), and the subjects they
    created are their own."""
    target = DecisionInputs.__table__
    names = [c.name for c in target.columns]
    statement = insert(session, target).from_select(
        names, select(PROJECTION).where(among(session, PROJECTION.c.subject_id, subject_ids))
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["subject_id"],
            set_={name: statement.excluded[name] for name in names if name != "subject_id"},
        )
    )
