"""Data-protection rights from the subject page: export (staff) and erase (admin)."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, flash, redirect, request, url_for

from suppression.app import current
from suppression.domain.text import is_storable
from suppression.services.destinations.enqueue import enqueue_removals
from suppression.services.rights.erasure import ERASE_REASONS, erase_loaded_subject
from suppression.services.rights.export import export_subject
from suppression.services.staff.access_log import AccessAction, record_access
from suppression.store.engines import flush_erased_pages
from suppression.web.staff import forms
from suppression.web.staff.auth import actor, admin_required
from suppression.web.staff.blueprint import bp
from suppression.web.staff.subjects import (
    _accessor,
    _address,
    _context,
    _subject_or_404,
    render_subject,
)

MAX_NOTE = 500


@bp.post("/subjects/<int:subject_id>/export")
def export(subject_id: int) -> Any:
    """Every stored fact about the subject as a JSON download (Art. 15 and 20)."""
    db = current.db_session()
    subject = _subject_or_404(db, subject_id)
    now = current.now()
    address = _address(subject)
    document = export_subject(
        db, current.vault(), address or "", subject, current.settings().policy, now
    )
    document["email"] = address
    note = request.form.get("reason", "").strip()[:MAX_NOTE] or None
    if note is not None and not is_storable(note):
        errors = {"export": {"reason": forms.UNSTORABLE}}
        return render_subject(db, subject, errors, {"export": request.form}, 422)
    record_access(db, _accessor(), AccessAction.EXPORT, subject.id, now, note)
    db.commit()
    body = json.dumps(document, indent=2, ensure_ascii=False, default=str)
    return Response(
        body,
        mimetype="application/json",
        headers={"Content-Disposition": f'attachment; filename="subject-{subject.id}-export.json"'},
    )


@bp.post("/subjects/<int:subject_id>/erase")
@admin_required
def erase(subject_id: int) -> Any:
    """Erase to the keyed index (Art. 17); two-phase when destinations are enabled."""
    db = current.db_session()
    subject = _subject_or_404(db, subject_id)
    reason = request.form.get("reason", "")
    errors = {}
    if reason not in ERASE_REASONS:
        errors["reason"] = f"Choose one of: {', '.join(ERASE_REASONS)}."
    if request.form.get("confirm") != "yes":
        errors["confirm"] = "Tick the box to confirm: erasure cannot be undone."
    if errors:
        return render_subject(db, subject, {"erase": errors}, {"erase": request.form}, 422)
    if subject.erasure_status is None:
        erase_loaded_subject(
            db, current.vault(), subject, reason, _context(reason, {}), enqueue_removals
        )
    status = subject.erasure_status
    db.commit()
    current.close_sessions()
    flush_erased_pages(current.runtime().engine)
    if status == "pending":
        flash(
            "Erased: the address is suppressed now; its personal data goes as soon as every "
            "destination has confirmed the removal.",
            "ok",
        )
    else:
        flash(f"Erased by {actor()}: only the keyed index of the address is kept.", "ok")
    return redirect(url_for("staff.subject", subject_id=subject_id), 303)
