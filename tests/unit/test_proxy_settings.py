"""TRUSTED_PROXY_HOPS: how many reverse proxies' X-Forwarded-For entries to trust."""

from __future__ import annotations

import pytest

from suppression.config.settings import ConfigError, Settings


def test_by_default_no_proxy_is_trusted(tmp_path):
    assert Settings.from_env({"SUPPRESSION_INSTANCE": str(tmp_path)}).trusted_proxy_hops == 0


@pytest.mark.parametrize(("text", "hops"), [("0", 0), ("1", 1), (" 2 ", 2), ("5", 5), ("", 0)])
def test_a_small_whole_number_of_hops_is_read(tmp_path, text, hops):
    environ = {"SUPPRESSION_INSTANCE": str(tmp_path), "TRUSTED_PROXY_HOPS": text}
    assert Settings.from_env(environ).trusted_proxy_hops == hops


@pytest.mark.parametrize("text", ["-1", "6", "100", "1.5", "one", "true", "\u0661", "0x1"])
def test_anything_else_stops_the_service_naming_the_setting(tmp_path, text):
    environ = {"SUPPRESSION_INSTANCE": str(tmp_path), "TRUSTED_PROXY_HOPS": text}
    with pytest.raises(ConfigError, match=r"TRUSTED_PROXY_HOPS must be a whole number from 0 to 5"):
        Settings.from_env(environ)
