"""Bearer API keys and their roles. 401: no or unknown key; 403: role may not."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import g, request
from flask_smorest import Blueprint, abort

from suppression.app.current import read_session
from suppression.services.staff.api_keys import Role, authenticate


def protected(blp: Blueprint, *roles: Role) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Require a live key whose role is one of `roles` (admin may do everything)."""
    allowed = {Role.ADMIN.value, *(role.value for role in roles)}

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not secret.strip():
                abort(401, message="An API key is required: Authorization: Bearer <key>.")
            # The read session: on SQLite a lookup must not take the write lock.
            reader = read_session()
            key = authenticate(reader, secret.strip())
            if key is not None:
                reader.expunge(key)  # keeps its loaded fields for g.api_key
            # Hand the connection back before the view takes its own: a request
            # holding one while waiting for another starves the pool under load.
            reader.rollback()
            if key is None:
                abort(401, message="The API key is unknown or revoked.")
            elif key.role not in allowed:
                abort(403, message=f"A {key.role} key may not do this.")
            g.api_key = key
            return view(*args, **kwargs)

        documented = blp.doc(
            security=[{"bearerAuth": []}],
            description=f"Roles: {', '.join(sorted(allowed))}.",
        )(wrapper)
        # Both answer in the one error shape (the DEFAULT_ERROR component).
        documented = blp.alt_response(401, response="DEFAULT_ERROR")(documented)
        return blp.alt_response(403, response="DEFAULT_ERROR")(documented)

    return decorator


def current_actor() -> str:
    return f"api_key:{g.api_key.name}"


def is_staff_key() -> bool:
    """A staff or admin key: it may undo what a person or staff put in place (with
    evidence); a sender key may not."""
    return g.api_key.role in (Role.STAFF.value, Role.ADMIN.value)
