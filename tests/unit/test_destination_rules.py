"""What each kind of destination hears: one rule over the check's decision."""

from datetime import UTC, datetime

import pytest

from suppression.domain.destinations import Channel, suppression_reason
from suppression.domain.jurisdictions import CountrySource, Jurisdiction
from suppression.domain.policy import (
    BlockKind,
    ConsentRecord,
    ConsentStatus,
    PolicySettings,
    Reason,
    SubjectState,
    decide,
)

NOW = datetime(2026, 11, 29, tzinfo=UTC)
US = Jurisdiction("US", CountrySource.DECLARED)
DE = Jurisdiction("DE", CountrySource.DECLARED)
GB = Jurisdiction("GB", CountrySource.DECLARED)


def reason_for(channel: Channel, state: SubjectState, where: Jurisdiction = US) -> Reason | None:
    return suppression_reason(channel, decide(state, where, PolicySettings(), NOW), state)


OPTED_OUT = SubjectState(consent=ConsentRecord(ConsentStatus.OPTED_OUT, NOW))


@pytest.mark.parametrize("channel", list(Channel))
def test_an_opt_out_is_pushed_to_every_channel(channel):
    assert reason_for(channel, OPTED_OUT) == Reason.OPTED_OUT


@pytest.mark.parametrize("channel", list(Channel))
def test_a_sendable_subject_is_pushed_nowhere(channel):
    assert reason_for(channel, SubjectState()) is None


@pytest.mark.parametrize(
    ("blocks", "reason"),
    [
        ({BlockKind.HARD_BOUNCE}, Reason.BOUNCED),
        ({BlockKind.COMPLAINT}, Reason.COMPLAINED),
        ({BlockKind.OBJECTION}, Reason.RESTRICTED),
    ],
)
def test_bounces_complaints_and_objections_opt_out_in_the_crm(blocks, reason):
    assert reason_for(Channel.CRM, SubjectState(blocks=frozenset(blocks))) == reason


def test_a_restriction_alone_is_not_a_lasting_crm_opt_out_but_removes_from_ads():
    restricted = SubjectState(blocks=frozenset({BlockKind.RESTRICTION}))
    assert reason_for(Channel.CRM, restricted) is None
    assert reason_for(Channel.ADS, restricted) == Reason.RESTRICTED


def test_an_eea_address_is_removed_from_ads_but_not_opted_out_in_the_crm():
    assert reason_for(Channel.ADS, SubjectState(), DE) == Reason.EEA
    assert reason_for(Channel.CRM, SubjectState(), DE) is None


def test_an_erased_subject_is_pushed_everywhere():
    erased = SubjectState(erased=True)
    assert reason_for(Channel.CRM, erased) == Reason.ERASED
    assert reason_for(Channel.ADS, erased) == Reason.ERASED


def test_a_missing_opt_in_is_not_a_suppression_anywhere():
    assert reason_for(Channel.ADS, SubjectState(), GB) is None
    assert reason_for(Channel.CRM, SubjectState(), GB) is None
