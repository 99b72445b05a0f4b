"""A destination setting that needs the operator soon shows on the staff page."""

import re
from dataclasses import replace

import pytest

from suppression.connectors.settings import destinations_from_env

# LinkedIn supports a version for a year: 202206 is years past its window.
LINKEDIN = {"LINKEDIN_ACCESS_TOKEN": "t", "LINKEDIN_SEGMENT_IDS": "1", "LINKEDIN_VERSION": "202206"}


@pytest.fixture
def settings(make_settings):
    return replace(make_settings(), destinations=destinations_from_env(LINKEDIN))


def test_the_destination_page_shows_an_old_linkedin_version(sign_in):
    client, _token = sign_in()
    page = client.get("/admin/destinations")
    assert page.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", page.get_data(as_text=True)))
    assert "warning LINKEDIN_VERSION 202206 is" in text
