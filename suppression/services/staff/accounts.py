"""Staff accounts: created by an operator or an admin, signed in with a password
hashed by scrypt (werkzeug.security), throttled after repeated failures.

Throttling counts failed attempts in the database, so it holds across every
worker process, within a window of 15 minutes:
- per account and client address (5): someone guessing one account's password
  from one place pauses that account there, and nowhere else, so that a stranger
  cannot lock a colleague out by typing wrong passwords for their name;
- per client address (20): trying many accounts from one place pauses that place;
- per account from everywhere (100), far above what one person mistypes: a
  guessing attack spread over many addresses pauses the account everywhere.
The result says which of them paused an attempt, so the page can say so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from suppression.domain.errors import Conflict, InvalidInput, NotFound
from suppression.domain.text import is_storable
from suppression.store.models import SignInAttempt, StaffUser

USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{1,63}")
MIN_PASSWORD = 12
MAX_PASSWORD = 1024
THROTTLE_WINDOW = timedelta(minutes=15)
MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS = 5
MAX_FAILURES_PER_ADDRESS = 20
MAX_FAILURES_PER_ACCOUNT = 100
# Attempts older than this are of no use to the throttle and are deleted.
ATTEMPTS_KEPT = timedelta(days=1)
# Compared against when the username is unknown, so that an unknown name takes
# as long to refuse as a wrong password.
_DUMMY_HASH = generate_password_hash("an unknown account has no password")


class StaffRole(StrEnum):
    STAFF = "staff"
    ADMIN = "admin"


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str) -> str:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        raise InvalidInput(
            "invalid username",
            {
                "username": [
                    (
                        "2 to 64 characters: letters, digits, dot, dash or underscore, "
                        "starting with a letter or digit."
                    )
                ]
            },
        )
    return name


def check_password(password: str) -> str:
    if not is_storable(password):
        # The sign-in form refuses such text (web/staff/auth.py): it could never be typed.
        raise InvalidInput(
            "password holds a NUL or a broken character",
            {"password": ["No NUL bytes or broken characters."]},
        )
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            "password too short",
            {"password": [f"At least {MIN_PASSWORD} characters; a passphrase is best."]},
        )
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("password too long", {"password": ["At most 1024 characters."]})
    return password


def check_role(role: str) -> StaffRole:
    try:
        return StaffRole(role)
    except ValueError:
        raise InvalidInput(
            f"unknown role {role!r}", {"role": ["Must be staff or admin."]}
        ) from None


def create_staff_user(
    session: Session, username: str, role: str, password: str, now: datetime
) -> StaffUser:
    name = check_username(username)
    checked_role = check_role(role)
    check_password(password)
    if find_staff_user(session, name) is not None:
        raise Conflict(f"a staff account named {name!r} exists already")
    user = StaffUser(
        username=name,
        role=checked_role.value,
        password_hash=generate_password_hash(password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.flush()
    return user


def find_staff_user(session: Session, username: str) -> StaffUser | None:
    name = normalise_username(username)
    if not USERNAME.fullmatch(name):
        return None  # no account is named so; and a NUL (from a URL) must reach no query
    return session.scalars(select(StaffUser).where(StaffUser.username == name)).one_or_none()


def get_staff_user(session: Session, user_id: int) -> StaffUser | None:
    return session.get(StaffUser, user_id)


def _require(session: Session, username: str) -> StaffUser:
    user = find_staff_user(session, username)
    if user is None:
        raise NotFound(f"no staff account named {normalise_username(username)!r}")
    return user


def list_staff_users(session: Session) -> list[StaffUser]:
    return list(session.scalars(select(StaffUser).order_by(StaffUser.username)))


def set_password(session: Session, username: str, password: str, now: datetime) -> StaffUser:
    """A new password: every session of the account ends (the caller may start a
    new one for the person who changed it)."""
    user = _require(session, username)
    check_password(password)
    user.password_hash = generate_password_hash(password)
    user.password_changed_at = now
    session.execute(delete(SignInAttempt).where(SignInAttempt.username == user.username))
    _end_sessions(session, user)
    return user


def set_disabled(session: Session, username: str, disabled: bool, now: datetime) -> StaffUser:
    """A disabled account cannot sign in, and its open sessions end at once."""
    user = _require(session, username)
    if disabled and user.disabled_at is None:
        user.disabled_at = now
    elif not disabled:
        user.disabled_at = None
    if disabled:
        _end_sessions(session, user)
    session.flush()
    return user


def end_sessions(session: Session, username: str) -> StaffUser:
    """Sign-out: every session of the account ends, on every device, and so does
    any copy of its cookie."""
    user = _require(session, username)
    _end_sessions(session, user)
    return user


def _end_sessions(session: Session, user: StaffUser) -> None:
    # Raised in SQL, not read and written back: two at once still both count.
    user.session_generation = StaffUser.session_generation + 1
    session.flush()


def verify_password(user: StaffUser, password: str) -> bool:
    return check_password_hash(user.password_hash, password[:MAX_PASSWORD])


class Pause(StrEnum):
    """What repeated failures paused, narrowest first."""

    ACCOUNT_FROM_ADDRESS = "account_from_address"  # this account, from this address
    ADDRESS = "address"  # every account, from this address
    ACCOUNT = "account"  # this account, from every address


@dataclass(frozen=True)
class SignInResult:
    user: StaffUser | None
    paused: Pause | None = None
    retry_after: timedelta = timedelta(0)

    @property
    def throttled(self) -> bool:
        return self.paused is not None


def _same_address(ip: str | None) -> ColumnElement[bool]:
    # An unknown address (None) is one client: attempts without one count together.
    return SignInAttempt.ip.is_(None) if ip is None else SignInAttempt.ip == ip


def _throttle(
    session: Session, username: str, ip: str | None, now: datetime
) -> tuple[Pause, timedelta] | None:
    """What is paused and for how long, or None when the attempt may go ahead.
    When several limits are reached, the longest wait is given (the broader
    pause on a tie)."""
    recent_failures = (
        SignInAttempt.succeeded.is_(False),
        SignInAttempt.attempted_at > now - THROTTLE_WINDOW,
    )
    account = SignInAttempt.username == username
    limits = (
        (Pause.ACCOUNT, (account,), MAX_FAILURES_PER_ACCOUNT),
        (Pause.ADDRESS, (_same_address(ip),), MAX_FAILURES_PER_ADDRESS),
        (
            Pause.ACCOUNT_FROM_ADDRESS,
            (account, _same_address(ip)),
            MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS,
        ),
    )
    paused: tuple[Pause, timedelta] | None = None
    for pause, conditions, limit in limits:
        count, oldest = session.execute(
            select(func.count(), func.min(SignInAttempt.attempted_at)).where(
                *conditions, *recent_failures
            )
        ).one()
        if count >= limit and oldest is not None:
            wait = oldest + THROTTLE_WINDOW - now
            if paused is None or wait > paused[1]:
                paused = (pause, wait)
    return paused


def sign_in(
    session: Session, username: str, password: str, ip: str | None, now: datetime
) -> SignInResult:
    """Check a password, unless too many recent failures throttle the attempt.

    A throttled attempt is not itself counted, so the wait ends when the window
    has passed the failures that caused it. A success clears the account's
    failures from the same address only: the real user signing in must not wipe
    the count of an attack on the account from elsewhere.
    """
    name = normalise_username(username)[:64]
    ip = ip or None
    throttle = _throttle(session, name, ip, now)
    if throttle is not None:
        pause, wait = throttle
        return SignInResult(None, paused=pause, retry_after=wait)
    user = find_staff_user(session, name) if name else None
    valid = check_password_hash(
        user.password_hash if user else _DUMMY_HASH, password[:MAX_PASSWORD]
    )
    succeeded = bool(user and valid and user.disabled_at is None)
    session.execute(delete(SignInAttempt).where(SignInAttempt.attempted_at < now - ATTEMPTS_KEPT))
    if succeeded:
        assert user is not None
        session.execute(
            delete(SignInAttempt).where(
                SignInAttempt.username == name,
                _same_address(ip),
                SignInAttempt.succeeded.is_(False),
            )
        )
        user.last_sign_in_at = now
    session.add(SignInAttempt(username=name, ip=ip, succeeded=succeeded, attempted_at=now))
    session.flush()
    return SignInResult(user if succeeded else None)
