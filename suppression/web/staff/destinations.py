"""Destination status for staff (/admin/destinations): what waits, what was
parked, the last success and error per destination, the deadline alarm, and the
one-click unsubscribes the worker has yet to fold; admins
can put parked rows back in the queue. Also the per-subject push history that
the subject page shows (`destination_history`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from suppression.app import current
from suppression.connectors.settings import DESTINATION_NAMES
from suppression.services.consents.intake import backlog
from suppression.services.destinations.queue_status import pushes_for, subject_destination_status
from suppression.services.destinations.registry import destination_statuses
from suppression.services.destinations.settle import retry_parked
from suppression.web.staff.auth import admin_required
from suppression.web.staff.blueprint import bp


@bp.get("/destinations")
def destinations() -> Any:
    settings = current.settings()
    db, now = current.read_session(), current.now()
    statuses = destination_statuses(db, settings.destinations, now)
    deadline_hours = settings.destinations.sync.deadline_hours
    return render_template(
        "staff/destinations.html",
        statuses=statuses,
        deadline_hours=deadline_hours,
        alarm=[s for s in statuses if s.overdue or s.failed],
        intake=backlog(db, now, timedelta(hours=deadline_hours)),
    )


@bp.post("/destinations/retry")
@admin_required
def retry_destination() -> Any:
    name = request.form.get("destination", "")
    if name not in DESTINATION_NAMES:
        flash("Choose one of the destinations listed.", "error")
        return redirect(url_for("staff.destinations"), 303)
    db = current.db_session()
    count = retry_parked(db, name)
    db.commit()
    flash(f"{count} parked row{'' if count == 1 else 's'} for {name} queued again.", "ok")
    return redirect(url_for("staff.destinations"), 303)


@bp.app_template_global("destination_history")
def destination_history(subject_id: int) -> dict[str, Any]:
    """For the subject page: where the subject stands with each destination, and
    every push a destination confirmed."""
    db = current.read_session()
    return {
        "statuses": subject_destination_status(db, subject_id),
        "pushes": list(reversed(pushes_for(db, subject_id))),
    }
