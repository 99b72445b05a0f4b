"""API keys: created once, shown once, stored as a SHA-256 of the secret."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from suppression.domain.errors import Conflict, InvalidInput, NotFound
from suppression.store.models import ApiKey

KEY_PREFIX = "sk_"


class Role(StrEnum):
    ADMIN = "admin"
    STAFF = "staff"
    SENDER = "sender"
    INBOUND = "inbound"  # posts received unsubscribe mails, nothing else


def _digest(secret: str) -> str:
    # A key is 256 random bits, so a fast unsalted hash cannot be brute-forced.
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_api_key(session: Session, name: str, role: str, now: datetime) -> tuple[ApiKey, str]:
    """The new key and its secret, which is not stored and cannot be shown again."""
    if role not in Role.__members__.values():
        raise InvalidInput(
            f"unknown role {role!r}", {"role": ["Must be admin, staff, sender or inbound."]}
        )
    name = name.strip()
    if not name:
        raise InvalidInput("a key needs a name", {"name": ["Missing name."]})
    if session.scalar(select(ApiKey.id).where(ApiKey.name == name)) is not None:
        raise Conflict(f"a key named {name!r} exists already")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        name=name, role=role, key_hash=_digest(secret), key_prefix=secret[:10], created_at=now
    )
    session.add(key)
    session.flush()
    return key, secret


def authenticate(session: Session, secret: str) -> ApiKey | None:
    """The live key with this secret, or None (unknown or revoked)."""
    if not secret.startswith(KEY_PREFIX):
        return None
    key = session.scalars(select(ApiKey).where(ApiKey.key_hash == _digest(secret))).one_or_none()
    if key is None or key.revoked_at is not None:
        return None
    return key


def revoke_api_key(session: Session, name: str, now: datetime) -> ApiKey:
    key = session.scalars(select(ApiKey).where(ApiKey.name == name)).one_or_none()
    if key is None:
        raise NotFound(f"no key named {name!r}")
    if key.revoked_at is None:
        key.revoked_at = now
    return key


def live_admin_keys(session: Session) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.role == Role.ADMIN.value, ApiKey.revoked_at.is_(None))
        )
        or 0
    )


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def key_actor(session: Session, key_id: int | None) -> str | None:
    """How an API key is named in evidence (`api_key:NAME`), revoked keys included."""
    if not key_id:
        return None
    name = session.scalar(select(ApiKey.name).where(ApiKey.id == key_id))
    return f"api_key:{name}" if name is not None else f"api_key#{key_id}"
