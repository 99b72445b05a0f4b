"""Configured purposes travel in URLs, CSV headers and JSON paths, so their names
are plain: letters, digits, '_' and '-'."""

import pytest

from suppression.config.environment import policy_from_env
from suppression.config.settings import ConfigError


def test_plain_purpose_names_are_taken():
    policy = policy_from_env({"PURPOSES": "email_marketing, sms-offers,Partner2"})
    assert policy.purposes == ("email_marketing", "sms-offers", "Partner2")


@pytest.mark.parametrize("name", ['say "hi"', "a.b", "news letter", "x" * 65, "café"])
def test_a_purpose_name_that_would_need_quoting_is_refused(name):
    with pytest.raises(ConfigError, match="PURPOSES"):
        policy_from_env({"PURPOSES": f"email_marketing,{name}"})
