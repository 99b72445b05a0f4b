"""Admin-only pages: the access log, and the staff accounts."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from suppression.app import current
from suppression.domain.addresses import mask
from suppression.domain.errors import SuppressionError
from suppression.domain.text import is_storable
from suppression.services.staff import accounts
from suppression.services.staff.access_log import PAGE_SIZE, list_access
from suppression.store.models import Subject
from suppression.web.staff.auth import admin_required, signed_in_user
from suppression.web.staff.blueprint import bp


def _positive_int(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        abort(400, description=f"{name} must be a positive whole number.")
    return int(text)


@bp.get("/access-log")
@admin_required
def access_log() -> Any:
    db = current.read_session()
    actor = request.args.get("actor", "").strip()[:200] or None
    if actor is not None and not is_storable(actor):
        abort(400, description="actor holds a NUL byte or a broken character.")
    subject_id = _positive_int("subject_id")
    page = list_access(
        db, PAGE_SIZE, before=_positive_int("before"), actor=actor, subject_id=subject_id
    )
    # The masked form only (j***@example.com), for the page's own rows.
    ids = {e.subject_id for e in page.entries if e.subject_id is not None}
    vault = current.vault()
    subjects: Iterable[Subject] = (
        db.scalars(select(Subject).where(Subject.id.in_(ids))) if ids else []
    )
    masked = {
        subject.id: mask(vault.open(subject.email_sealed)) if subject.email_sealed else "erased"
        for subject in subjects
    }
    return render_template(
        "staff/access_log.html",
        page=page,
        masked=masked,
        actor=actor or "",
        subject_id=subject_id or "",
    )


@bp.get("/accounts")
@admin_required
def accounts_page() -> Any:
    return _render_accounts({}, {})


def _render_accounts(form: dict[str, str], errors: dict[str, str], status: int = 200) -> Any:
    users = accounts.list_staff_users(current.read_session())
    return render_template(
        "staff/accounts.html", users=users, form=form, errors=errors, roles=list(accounts.StaffRole)
    ), status


@bp.post("/accounts")
@admin_required
def create_account() -> Any:
    form = {name: request.form.get(name, "") for name in ("username", "role")}
    db = current.db_session()
    try:
        user = accounts.create_staff_user(
            db, form["username"], form["role"], request.form.get("password", ""), current.now()
        )
    except SuppressionError as error:
        db.rollback()
        # In the page's order: the first takes the focus.
        fields = ("username", "role", "password")
        errors = {
            name: " ".join(error.errors[name])
            for name in sorted(error.errors, key=lambda n: fields.index(n) if n in fields else 0)
        }
        return _render_accounts(form, errors or {"username": error.message}, 422)
    db.commit()
    flash(f"Account {user.username} ({user.role}) created. Give them the password privately.")
    return redirect(url_for("staff.accounts_page"), 303)


@bp.post("/accounts/<username>/disable")
@admin_required
def disable_account(username: str) -> Any:
    if accounts.normalise_username(username) == signed_in_user().username:
        abort(409, description="You cannot disable your own account.")
    return _set_disabled(username, True)


@bp.post("/accounts/<username>/enable")
@admin_required
def enable_account(username: str) -> Any:
    return _set_disabled(username, False)


def _set_disabled(username: str, disabled: bool) -> Any:
    db = current.db_session()
    try:
        user = accounts.set_disabled(db, username, disabled, current.now())
    except SuppressionError as error:
        abort(404, description=error.message)
    db.commit()
    state = "disabled: its sessions have ended" if disabled else "enabled"
    flash(f"Account {user.username} is {state}.", "ok")
    return redirect(url_for("staff.accounts_page"), 303)
