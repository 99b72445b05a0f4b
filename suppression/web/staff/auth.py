"""Who is signed in: the signed session cookie, CSRF tokens, roles, sign-in and out.

The session is Flask's signed cookie. It holds the account id, the account's
session generation (sign-out, a new password and disabling raise it, so every
copy of an older cookie is refused on its next request), and the sign-in time
(sessions end STAFF_SESSION_HOURS after sign-in, whatever the cookie says).
Every form of the staff pages carries a CSRF token bound to that session; the
public pages (/u/, /preferences/) are not part of this blueprint and need none.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import (
    Flask,
    abort,
    flash,
    g,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from werkzeug.wrappers import Response

from suppression.app import current
from suppression.domain.errors import InvalidInput
from suppression.domain.text import is_storable
from suppression.services.staff import accounts
from suppression.services.staff.accounts import Pause, StaffRole
from suppression.store.models import StaffUser
from suppression.web.staff.blueprint import bp
from suppression.web.staff.list_results import forget_held

SESSION_KEY = "staff"
CSRF_KEY = "csrf"
CSRF_FIELD = "csrf_token"
OPEN_ENDPOINTS = {"staff.sign_in"}
# The subject whose page the very next request may show without logging it again
# (it follows straight from a logged search or a change). Any other request drops it.
SHOWN_KEY = "shown_subject"
UNSTORABLE_SIGN_IN = (
    "The username or password holds a character no account can have (a NUL byte or a "
    "broken character): type them again."
)


class StaffSessionInterface(SecureCookieSessionInterface):
    """Marks the cookie Secure whenever the request itself came over HTTPS (behind
    a TLS proxy with forwarded headers trusted), not only when the setting says so."""

    def get_cookie_secure(self, app: Flask) -> bool:
        configured = bool(app.config["SESSION_COOKIE_SECURE"])
        return configured or (has_request_context() and request.is_secure)


def configure_sessions(app: Flask) -> None:
    settings = current.of(app).settings
    app.session_interface = StaffSessionInterface()
    app.config.update(
        # __Host-: the browser refuses it over plain HTTP and for any other domain.
        SESSION_COOKIE_NAME="__Host-staff" if settings.session_cookie_secure else "staff",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.session_cookie_secure,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.staff_session_hours),
    )


def current_user() -> StaffUser | None:
    return g.get("staff_user")


def signed_in_user() -> StaffUser:
    user = current_user()
    if user is None:  # the blueprint's guard runs first; this is for type checkers
        abort(401)
    return user


def is_admin() -> bool:
    user = current_user()
    return user is not None and user.role == StaffRole.ADMIN.value


def actor() -> str:
    return f"staff:{signed_in_user().username}"


def admin_required(view: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_admin():
            abort(403, description="Only an admin may open this page or do this.")
        return view(*args, **kwargs)

    return wrapper


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def _csrf_valid() -> bool:
    expected = session.get(CSRF_KEY)
    sent = request.form.get(CSRF_FIELD, "")
    if not expected:
        return False
    return hmac.compare_digest(sent.encode(), expected.encode())


def _load_user() -> StaffUser | None:
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict):
        return None
    user = accounts.get_staff_user(current.read_session(), int(data.get("id", 0)))
    if user is None or user.disabled_at is not None:
        return None
    if data.get("gen") != user.session_generation:
        return None  # signed out, a new password, or disabled since
    hours = current.settings().staff_session_hours
    if current.now().timestamp() - float(data.get("at", 0)) > hours * 3600:
        return None
    return user


def _safe_next(target: str | None) -> str:
    """Only a path of these pages: never another site (an open redirect)."""
    if target and target.startswith("/admin/") and not target.startswith("//"):
        return target
    return url_for("staff.search")


@bp.before_request
def guard() -> Response | None:
    user = _load_user()
    g.staff_user = user
    if user is None and session.get(SESSION_KEY):
        session.pop(SESSION_KEY)  # expired, disabled, or the password changed
    if user is None and request.endpoint not in OPEN_ENDPOINTS:
        target = request.full_path.rstrip("?") if request.method == "GET" else None
        return redirect(url_for("staff.sign_in", next=target), 303)
    if request.endpoint != "staff.subject" and SHOWN_KEY in session:
        session.pop(SHOWN_KEY)
    if request.method == "POST" and not _csrf_valid():
        abort(
            400,
            description="This form has expired or did not come from these pages. "
            "Go back, reload the page and try again.",
        )
    return None


@bp.context_processor
def staff_context() -> dict[str, Any]:
    return {
        "csrf_token": csrf_token,
        "staff_user": current_user(),
        "is_admin": is_admin(),
    }


def start_session(user: StaffUser) -> None:
    """A fresh session (a new CSRF token too): nothing from before sign-in survives."""
    session.clear()
    session.permanent = True
    session[SESSION_KEY] = {
        "id": user.id,
        "gen": user.session_generation,
        "at": current.now().timestamp(),
    }
    csrf_token()


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in() -> Any:
    target = request.values.get("next")
    if current_user() is not None and request.method == "GET":
        return redirect(_safe_next(target), 303)
    if request.method == "GET":
        return render_template("staff/sign_in.html", next=target)
    username = request.form.get("username", "")
    if not (is_storable(username) and is_storable(request.form.get("password", ""))):
        # No account has such a name or password; the name must not reach a query.
        return render_template(
            "staff/sign_in.html", error=UNSTORABLE_SIGN_IN, next=target, username=""
        ), 422
    db = current.db_session()
    result = accounts.sign_in(
        db, username, request.form.get("password", ""), request.remote_addr, current.now()
    )
    db.commit()
    if result.paused is not None:
        error = _paused_message(result.paused, result.retry_after)
        return render_template(
            "staff/sign_in.html", error=error, next=target, username=username
        ), 429
    if result.user is None:
        return render_template(
            "staff/sign_in.html",
            error="Unknown username or wrong password (or the account is disabled).",
            next=target,
            username=username,
        ), 401
    start_session(result.user)
    return redirect(_safe_next(target), 303)


# What each pause stops, and why: the person who meets it knows whether another
# network, an admin's password reset, or only waiting helps.
PAUSED = {
    Pause.ACCOUNT_FROM_ADDRESS: (
        "Too many failed sign-ins for this account from your address. Sign-in to this "
        "account from here is paused (from elsewhere it works as usual): try again in "
        "{wait}, or ask an admin to reset your password."
    ),
    Pause.ADDRESS: (
        "Too many failed sign-ins from your address, for one or more accounts. Sign-in "
        "from here is paused for every account: try again in {wait}."
    ),
    Pause.ACCOUNT: (
        "Too many failed sign-ins for this account from many addresses: someone may be "
        "guessing its password. Sign-in to this account is paused everywhere: try again "
        "in {wait}, or ask an admin to reset your password."
    ),
}


def _paused_message(pause: Pause, retry_after: timedelta) -> str:
    minutes = max(1, -(-int(retry_after.total_seconds()) // 60))
    return PAUSED[pause].format(wait=f"{minutes} minute{'s' if minutes > 1 else ''}")


@bp.post("/sign-out")
def sign_out() -> Any:
    """Ends the session on the server too: a copy of the cookie stops working."""
    db = current.db_session()
    accounts.end_sessions(db, signed_in_user().username)
    db.commit()
    forget_held()  # a checked list's answer goes with the session
    session.clear()
    flash("You are signed out.", "ok")
    return redirect(url_for("staff.sign_in"), 303)


@bp.route("/account", methods=["GET", "POST"])
def account() -> Any:
    """Change one's own password; other sessions of the account end."""
    user = signed_in_user()
    if request.method == "GET":
        return render_template("staff/account.html", errors={})
    errors: dict[str, str] = {}
    new = request.form.get("new_password", "")
    if not accounts.verify_password(user, request.form.get("current_password", "")):
        errors["current_password"] = "This is not your current password."
    elif new != request.form.get("confirm_password", ""):
        errors["confirm_password"] = "The two new passwords differ."
    else:
        try:
            accounts.check_password(new)
        except InvalidInput as exc:
            errors["new_password"] = exc.errors["password"][0]
    if errors:
        return render_template("staff/account.html", errors=errors), 422
    db = current.db_session()
    changed = accounts.set_password(db, user.username, new, current.now())
    db.commit()
    start_session(changed)
    flash("Your password is changed. Other sessions of your account have ended.", "ok")
    return redirect(url_for("staff.search"), 303)
