"""The staff sign-in throttle against a real database: failures counted per
account and client address (5), per client address (20), and per account from
everywhere (100), each within 15 minutes; the result says which one paused."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from suppression.services.staff import accounts
from suppression.services.staff.accounts import Pause
from suppression.store.models import SignInAttempt

PASSWORD = "a long enough passphrase"
ATTACKER, ALICE = "192.0.2.66", "198.51.100.7"


@pytest.fixture
def alice(session, clock):
    accounts.create_staff_user(session, "alice", "staff", PASSWORD, clock())
    accounts.create_staff_user(session, "bob", "staff", PASSWORD, clock())
    return "alice"


def attempt(session, clock, ip, password=PASSWORD, username="alice"):
    return accounts.sign_in(session, username, password, ip, clock())


def failures_from_many_addresses(session, clock, count: int, username="alice") -> None:
    """The rows `count` wrong passwords from as many addresses leave behind (a
    distributed attack), within the last few minutes."""
    for n in range(count):
        session.add(
            SignInAttempt(
                username=username,
                ip=f"10.{n // 250}.{n % 250}.1",
                succeeded=False,
                attempted_at=clock() - timedelta(minutes=3),
            )
        )
    session.flush()


def test_five_failures_from_one_address_pause_that_account_there_only(session, clock, alice):
    for _ in range(5):
        clock.advance(minutes=1)
        result = attempt(session, clock, ATTACKER, "a guess")
        assert (result.user, result.paused) == (None, None)
    # Even the right password is not checked from there while paused...
    blocked = attempt(session, clock, ATTACKER)
    assert (blocked.user, blocked.paused) == (None, Pause.ACCOUNT_FROM_ADDRESS)
    assert blocked.throttled
    assert blocked.retry_after == timedelta(minutes=11)
    # ...but the real user at another address signs in, and so does another
    # account from the attacker's address.
    assert attempt(session, clock, ALICE).user is not None
    assert attempt(session, clock, ATTACKER, username="bob").user is not None
    clock.advance(minutes=11, seconds=1)
    assert attempt(session, clock, ATTACKER).user is not None


@pytest.mark.slow
def test_failures_spread_over_addresses_pause_nobody_below_the_account_limit(session, clock, alice):
    for n in range(30):
        assert attempt(session, clock, f"203.0.113.{n}", "a guess").paused is None
    assert attempt(session, clock, ALICE).user is not None


@pytest.mark.slow
def test_twenty_failures_from_one_address_pause_every_account_from_there(session, clock, alice):
    for n in range(20):
        attempt(session, clock, ATTACKER, "a guess", username=f"guess{n}")
    blocked = attempt(session, clock, ATTACKER)
    assert (blocked.user, blocked.paused) == (None, Pause.ADDRESS)
    assert attempt(session, clock, ALICE).user is not None


def test_a_hundred_failures_from_many_addresses_pause_the_account_everywhere(session, clock, alice):
    failures_from_many_addresses(session, clock, 99)
    assert attempt(session, clock, ALICE).user is not None  # 99: not yet
    attempt(session, clock, ATTACKER, "a guess")  # the hundredth
    blocked = attempt(session, clock, ALICE)
    assert (blocked.user, blocked.paused) == (None, Pause.ACCOUNT)
    assert blocked.retry_after == timedelta(minutes=12)
    # Other accounts are not affected, from any address.
    assert attempt(session, clock, ATTACKER, username="bob").user is not None
    clock.advance(minutes=12, seconds=1)
    # The window has passed the 99; the hundredth alone pauses nothing.
    assert attempt(session, clock, ALICE).user is not None


def test_where_several_limits_are_reached_the_longest_wait_is_given(session, clock, alice):
    failures_from_many_addresses(session, clock, 95)  # 3 minutes ago
    for _ in range(5):
        clock.advance(minutes=1)
        attempt(session, clock, ATTACKER, "a guess")
    # 100 for the account (the oldest 8 minutes ago) and 5 from the attacker's
    # address (the oldest 4 minutes ago): from there, the later end is given.
    from_attacker = attempt(session, clock, ATTACKER)
    assert (from_attacker.paused, from_attacker.retry_after) == (
        Pause.ACCOUNT_FROM_ADDRESS,
        timedelta(minutes=11),
    )
    from_alice = attempt(session, clock, ALICE)
    assert (from_alice.paused, from_alice.retry_after) == (Pause.ACCOUNT, timedelta(minutes=7))


def test_the_real_users_sign_in_does_not_wipe_the_count_of_an_attack_elsewhere(
    session, clock, alice
):
    for _ in range(4):
        attempt(session, clock, ATTACKER, "a guess")
    failures_from_many_addresses(session, clock, 95)
    assert attempt(session, clock, ALICE).user is not None
    attempt(session, clock, ATTACKER, "a guess")  # the attacker's fifth, the hundredth
    assert attempt(session, clock, ATTACKER).throttled
    assert attempt(session, clock, ALICE).paused == Pause.ACCOUNT


@pytest.mark.slow
def test_a_successful_sign_in_clears_the_accounts_failures_from_that_address(session, clock, alice):
    for _ in range(4):
        attempt(session, clock, ALICE, "a typo")
    assert attempt(session, clock, ALICE).user is not None
    for _ in range(4):
        attempt(session, clock, ALICE, "a typo")
    assert attempt(session, clock, ALICE).user is not None
    remaining = session.scalars(select(SignInAttempt).where(SignInAttempt.succeeded.is_(False)))
    assert list(remaining) == []


def test_attempts_without_a_client_address_count_as_one_client(session, clock, alice):
    for _ in range(5):
        attempt(session, clock, None, "a guess")
    assert attempt(session, clock, None).paused == Pause.ACCOUNT_FROM_ADDRESS
    assert attempt(session, clock, "").paused == Pause.ACCOUNT_FROM_ADDRESS
    assert attempt(session, clock, ALICE).user is not None


def test_a_password_reset_lifts_a_pause_of_the_account(session, clock, alice):
    failures_from_many_addresses(session, clock, 100)
    assert attempt(session, clock, ALICE).paused == Pause.ACCOUNT
    accounts.set_password(session, "alice", "a brand new passphrase", clock())
    assert attempt(session, clock, ALICE, "a brand new passphrase").user is not None
