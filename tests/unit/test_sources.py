"""Channels: where a change came from, as the metrics and the staff pages name it."""

import pytest

from suppression.domain.feedback import PLATFORMS
from suppression.domain.sources import CHANNELS, STAFF_CHANNELS, channel_label, channel_of
from suppression.services.links import unsubscribes


@pytest.mark.parametrize(
    ("source", "channel"),
    [
        ("one_click", "one_click"),
        ("mailto", "mailto"),
        ("ses", "ses"),
        ("keap", "keap"),
        ("phone", "phone"),
        ("import", "import"),
        ("import:crm-2026", "import"),
        ("retention:non_customer_2y", "retention"),
        ("partner-crm", "other"),
        ("other", "other"),
        ("jane@example.com", "other"),
        ("ses:anything", "other"),
    ],
)
def test_a_source_counts_under_its_channel(source, channel):
    assert channel_of(source) == channel


def test_every_own_channel_and_platform_has_a_name():
    own = [
        unsubscribes.SOURCE_ONE_CLICK,
        unsubscribes.SOURCE_UNSUBSCRIBE_PAGE,
        unsubscribes.SOURCE_PREFERENCE_PAGE,
        unsubscribes.SOURCE_MAILTO,
        *PLATFORMS,
        *(name for name in STAFF_CHANNELS if name != "other"),
    ]
    assert all(source in CHANNELS for source in own)
    assert channel_label("sendgrid") == "SendGrid webhook"
    assert channel_label("whatever") == "Other (a source the caller named)"
