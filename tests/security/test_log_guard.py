"""The suite-wide log guard (tests/log_guard.py) really looks, and looks right."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import pytest
from log_guard import AddressLogGuard, find_addresses, find_secrets

from suppression.domain.tokens import LinkTokens
from suppression.services.staff.api_keys import create_api_key


@pytest.mark.parametrize(
    "line",
    [
        "opt-out recorded for jane.doe@example.com",
        "lookup Jane.Doe+news@Example.CO.UK failed",
        "erased <hans@bücher.de>",
        "pushed hans@xn--bcher-kva.de to keap",
        "email=a_b-c@sub.example.org,",
    ],
)
def test_the_detector_finds_addresses(line):
    assert find_addresses(line)


@pytest.mark.parametrize(
    "line",
    [
        "opt-out recorded for j***@example.com (subject 12)",
        "mass unsubscribe alarm: domain example.com campaign 2026-11",
        "connected to postgresql://postgres@127.0.0.1:5432/test",
        "POST /u/AQEBx9-_abc HTTP/1.1 200",
        "pinned pkg@3.11.7",
        "subject 7 keyed index 3f2a…",
    ],
)
def test_the_detector_passes_masked_forms_and_ordinary_lines(line):
    assert find_addresses(line) == []


def test_a_guard_keeps_a_logged_address_and_masks_it_in_its_report():
    guard = AddressLogGuard()
    logger = logging.getLogger("suppression.guard_demo")
    logger.addHandler(guard)
    logger.propagate = False  # this deliberate leak must not reach the suite's guard
    try:
        logger.warning("recorded for %s", "leaky.person@example.com")
        logger.warning("recorded for %s", "l***@example.com")
    finally:
        logger.removeHandler(guard)
        logger.propagate = True
    assert guard.seen == 2
    assert len(guard.leaks) == 1
    assert "leaky.person@example.com" not in guard.report()
    assert "l***@example.com" in guard.report()


def test_a_guard_looks_into_tracebacks():
    guard = AddressLogGuard()
    try:
        raise ValueError("bad address leaky@example.com")
    except ValueError:
        record = logging.LogRecord(
            "suppression.x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    guard.handle(record)
    assert len(guard.leaks) == 1


def test_the_suite_guard_is_installed_and_sees_the_service_loggers(no_address_in_logs):
    assert no_address_in_logs in logging.getLogger().handlers
    before = no_address_in_logs.seen
    logging.getLogger("suppression.guard_demo").warning("opted out: %s", "m***@example.com")
    assert no_address_in_logs.seen == before + 1
    assert no_address_in_logs.leaks == []


def minted_token() -> str:
    """A real unsubscribe token, as the service mints it."""
    return LinkTokens({1: b"t" * 32}).mint("jane.doe@example.com", "all", None, datetime.now(UTC))


def test_the_detector_finds_link_tokens_and_api_keys(session, clock):
    _key, secret = create_api_key(session, "canary", "sender", clock())
    session.rollback()
    token = minted_token()
    assert find_secrets(f"POST /u/{token} HTTP/1.1 200") == [token]
    assert find_secrets(f"Exception on /preferences/{token} [GET]") == [token]
    assert find_secrets(f"Authorization: Bearer {secret}") == [secret]


@pytest.mark.parametrize(
    "line",
    [
        "POST /u/[token] HTTP/1.1 200",
        "POST /u/AQEBx9-_abc HTTP/1.1 200",  # cut short: not a whole token
        "key sk_[key] revoked",
        "key prefix sk_AbCdEfG… (keys list)",
        "keyed index 3f2a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f",
    ],
)
def test_the_detector_passes_redacted_and_ordinary_lines(line):
    assert find_secrets(line) == []


def test_a_guard_keeps_a_logged_token_or_key_and_masks_it_in_its_report(session, clock):
    _key, secret = create_api_key(session, "canary", "sender", clock())
    session.rollback()
    token = minted_token()
    guard = AddressLogGuard()
    logger = logging.getLogger("suppression.guard_demo")
    logger.addHandler(guard)
    logger.propagate = False  # these deliberate leaks must not reach the suite's guard
    try:
        logger.warning("Exception on /u/%s [POST]", token)
        logger.warning("request with Bearer %s", secret)
        logger.warning("Exception on /u/[token] [POST]")
    finally:
        logger.removeHandler(guard)
        logger.propagate = True
    assert guard.seen == 3
    assert len(guard.leaks) == 2
    assert token not in guard.report()
    assert secret not in guard.report()


def test_a_guard_finds_a_token_in_a_traceback_and_honours_a_redacted_one():
    token = minted_token()
    guard = AddressLogGuard()
    try:
        raise ValueError(f"bad link {token}")
    except ValueError:
        record = logging.LogRecord(
            "gunicorn.error", logging.ERROR, __file__, 1, "failed", None, sys.exc_info()
        )
    guard.handle(record)
    assert len(guard.leaks) == 1
    record.exc_text = "ValueError: bad link [token]"  # what a redacting filter leaves
    guard.handle(record)
    assert len(guard.leaks) == 1
