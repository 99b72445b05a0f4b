"""The access log and staff accounts, against a real database (the sign-in
throttle: test_sign_in_throttle.py)."""

import pytest
from sqlalchemy import select

from suppression.domain.errors import Conflict, InvalidInput
from suppression.domain.policy import ConsentStatus
from suppression.services.consents.recording import EventContext, record_consent
from suppression.services.staff import accounts
from suppression.services.staff.access_log import (
    AccessAction,
    AccessChannel,
    Accessor,
    access_entries_for,
    list_access,
    record_access,
)
from suppression.store.models import SignInAttempt, StaffUser

PASSWORD = "a long enough passphrase"
DESK = Accessor("staff:alice", AccessChannel.PAGE, "10.0.0.1")


def subject_for(session, vault, clock, email):
    ctx = EventContext("test", "test", clock(), clock())
    subject = record_consent(session, vault, email, "all", ConsentStatus.OPTED_OUT, ctx)
    session.flush()
    return subject.id


def test_access_entries_for_lists_one_subjects_accesses_oldest_first(session, vault, clock):
    jane = subject_for(session, vault, clock, "jane@example.com")
    bob = subject_for(session, vault, clock, "bob@example.com")
    record_access(session, DESK, AccessAction.LOOKUP, jane, clock(), "ticket 1")
    record_access(session, DESK, AccessAction.LOOKUP, bob, clock())
    api = Accessor("api_key:desk", AccessChannel.API)
    record_access(session, api, AccessAction.LOOKUP, jane, clock.advance(hours=1))
    session.commit()
    entries = access_entries_for(session, jane)
    assert [(e.actor, e.channel, e.reason) for e in entries] == [
        ("staff:alice", "page", "ticket 1"),
        ("api_key:desk", "api", None),
    ]
    assert entries[0].ip == "10.0.0.1"
    assert entries[1].occurred_at == clock()


def test_a_blank_reason_is_stored_as_none_and_a_long_one_is_cut(session, clock):
    blank = record_access(session, DESK, AccessAction.LOOKUP, None, clock(), "   ")
    long = record_access(session, DESK, AccessAction.LOOKUP, None, clock(), "x" * 900)
    assert blank.reason is None
    assert len(long.reason) == 500


def test_list_access_pages_newest_first_without_gaps(session, clock):
    for n in range(5):
        record_access(session, DESK, AccessAction.LOOKUP, None, clock(), f"r{n}")
    session.commit()
    first = list_access(session, limit=2)
    second = list_access(session, limit=2, before=first.next_before)
    third = list_access(session, limit=2, before=second.next_before)
    reasons = [e.reason for page in (first, second, third) for e in page.entries]
    assert reasons == ["r4", "r3", "r2", "r1", "r0"]
    assert third.next_before is None


def test_passwords_are_stored_as_scrypt_hashes_only(session, clock):
    user = accounts.create_staff_user(session, " Alice ", "admin", PASSWORD, clock())
    assert user.username == "alice"
    assert user.password_hash.startswith("scrypt:")
    assert PASSWORD not in user.password_hash
    assert accounts.verify_password(user, PASSWORD)
    assert not accounts.verify_password(user, PASSWORD + "x")


@pytest.mark.parametrize(
    ("username", "role", "password", "field"),
    [
        ("a", "staff", PASSWORD, "username"),
        ("jane@example.com", "staff", PASSWORD, "username"),
        ("alice", "sender", PASSWORD, "role"),
        ("alice", "staff", "short", "password"),
    ],
)
def test_bad_account_details_are_refused_naming_the_field(
    session, clock, username, role, password, field
):
    with pytest.raises(InvalidInput) as caught:
        accounts.create_staff_user(session, username, role, password, clock())
    assert field in caught.value.errors
    assert session.scalars(select(StaffUser)).first() is None


def test_a_username_is_taken_once(session, clock):
    accounts.create_staff_user(session, "alice", "staff", PASSWORD, clock())
    with pytest.raises(Conflict):
        accounts.create_staff_user(session, "ALICE", "admin", PASSWORD, clock())


def test_sign_in_succeeds_with_the_right_password_and_notes_the_time(session, clock):
    accounts.create_staff_user(session, "alice", "staff", PASSWORD, clock())
    result = accounts.sign_in(session, "Alice", PASSWORD, "10.0.0.1", clock.advance(minutes=1))
    assert result.user is not None
    assert result.user.last_sign_in_at == clock()
    assert not result.throttled


def test_a_disabled_account_cannot_sign_in(session, clock):
    accounts.create_staff_user(session, "alice", "staff", PASSWORD, clock())
    accounts.set_disabled(session, "alice", True, clock())
    assert accounts.sign_in(session, "alice", PASSWORD, None, clock()).user is None


def test_old_attempts_are_deleted(session, clock):
    accounts.sign_in(session, "someone", "wrong", "10.0.0.1", clock())
    clock.advance(days=2)
    accounts.sign_in(session, "someone", "wrong", "10.0.0.1", clock())
    assert len(list(session.scalars(select(SignInAttempt)))) == 1


def test_sign_out_a_new_password_and_disabling_each_raise_the_session_generation(session, clock):
    user = accounts.create_staff_user(session, "alice", "staff", PASSWORD, clock())
    assert user.session_generation == 0
    accounts.end_sessions(session, "alice")
    assert user.session_generation == 1
    accounts.set_password(session, "alice", PASSWORD + " more", clock())
    assert user.session_generation == 2
    accounts.set_disabled(session, "alice", True, clock())
    assert user.session_generation == 3
    accounts.set_disabled(session, "alice", False, clock())
    assert user.session_generation == 3  # enabling starts no session of its own
