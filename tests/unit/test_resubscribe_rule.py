"""The re-subscribe rule (domain/resubscribe.py), which the API, the pages and the
importer all ask."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from suppression.domain.resubscribe import (
    OptInAuthority,
    OptInConflict,
    opt_in_conflict,
    overrides_opt_out,
)

T = datetime(2025, 6, 1, tzinfo=UTC)
EARLIER = datetime(2025, 1, 1, tzinfo=UTC)
LATER = datetime(2025, 12, 1, tzinfo=UTC)


@dataclass
class Facts:
    is_erased: bool = False
    has_complaint: bool = False
    opted_out: bool = False
    hashed: bool = False

    def erased(self) -> bool:
        return self.is_erased

    def complained(self) -> bool:
        return self.has_complaint

    def opted_out_before(self) -> bool:
        return self.opted_out

    def hashed_suppression(self) -> bool:
        return self.hashed


@pytest.mark.parametrize(
    ("facts", "authority", "evidence", "expected"),
    [
        (Facts(), OptInAuthority.SENDER, False, None),
        (Facts(is_erased=True, has_complaint=True), OptInAuthority.SENDER, False, "erased"),
        (Facts(has_complaint=True, opted_out=True), OptInAuthority.SENDER, False, "complained"),
        (Facts(opted_out=True, hashed=True), OptInAuthority.SENDER, False, "opted_out"),
        (Facts(hashed=True), OptInAuthority.SENDER, False, "hashed_suppression"),
        # The person's own opt-in overrides an opt-out, never an erasure or a complaint.
        (Facts(opted_out=True, hashed=True), OptInAuthority.SUBJECT, False, None),
        (Facts(is_erased=True), OptInAuthority.SUBJECT, False, "erased"),
        (Facts(has_complaint=True), OptInAuthority.SUBJECT, False, "complained"),
        # Staff need evidence; with it, nothing stands in the way.
        (Facts(opted_out=True), OptInAuthority.STAFF, False, "opted_out"),
        (Facts(True, True, True, True), OptInAuthority.STAFF, True, None),
    ],
)
def test_the_rule(facts, authority, evidence, expected):
    conflict = opt_in_conflict(facts, authority, evidence)
    assert conflict == (None if expected is None else OptInConflict(expected))


class Asked(Facts):
    """Fails on any fact the rule should not need."""

    def __init__(self, *needed: str):
        super().__init__()
        self.needed = needed

    def __getattribute__(self, name):
        if name in ("erased", "complained", "opted_out_before", "hashed_suppression"):
            assert name in object.__getattribute__(self, "needed"), name
        return object.__getattribute__(self, name)


def test_facts_are_read_only_as_far_as_the_rule_goes():
    assert opt_in_conflict(Asked(), OptInAuthority.STAFF, True) is None
    assert opt_in_conflict(Asked("erased", "complained"), OptInAuthority.SUBJECT, False) is None


def test_an_opt_in_overrides_an_opt_out_of_its_purpose_or_of_all_at_or_before_it():
    assert overrides_opt_out("email_marketing", T, {"email_marketing": EARLIER})
    assert overrides_opt_out("email_marketing", T, {"all": T})
    assert not overrides_opt_out("email_marketing", T, {"ad_audiences": EARLIER})
    assert not overrides_opt_out("email_marketing", T, {"all": LATER})
    # An opt-in of all overrides an opt-out of any purpose.
    assert overrides_opt_out("all", T, {"ad_audiences": EARLIER})
    assert not overrides_opt_out("all", T, {"ad_audiences": LATER})
    assert not overrides_opt_out("all", T, {})
