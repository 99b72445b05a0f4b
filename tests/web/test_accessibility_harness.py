"""The accessibility helpers catch what they are there to catch: a page with known
faults fails axe and the sideways-scroll check, so a passing page means something."""

from __future__ import annotations

import json

import pytest
from accessibility import AXE_DIR, INSTALL_AXE, ROOT, axe_serious, describe, sideways_overflow

pytestmark = pytest.mark.slow

FAULTY = """<!doctype html><html lang="en"><head><title>Faulty</title></head><body><main>
<h1>Faulty</h1><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button>
<div style="width: 1000px">too wide for a phone</div></main></body></html>"""


def test_axe_reports_serious_faults_and_the_scroll_check_sees_a_wide_page(page_at):
    page = page_at("phone")
    page.set_content(FAULTY)
    found = {violation["id"] for violation in axe_serious(page)}
    assert {"image-alt", "button-name"} <= found, describe(axe_serious(page))
    assert sideways_overflow(page) == 1000 + 8 - 390  # the body's 8 px margin


def test_axe_is_the_pinned_package_and_the_install_command_is_ci_s(page_at):
    page = page_at("desktop")
    page.set_content(FAULTY)
    axe_serious(page)
    pinned = json.loads((AXE_DIR / "package.json").read_text())["dependencies"]["axe-core"]
    assert page.evaluate("() => window.axe.version") == pinned
    assert INSTALL_AXE in (ROOT / ".ci" / "run").read_text()
