"""The suite-wide log guard (tests/log_guard.py) really looks, and looks right."""

from __future__ import annotations

import logging
import sys

import pytest
from log_guard import AddressLogGuard, find_addresses


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
