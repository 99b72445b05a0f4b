"""Pages in a real browser: Debian's Chromium driven by Playwright's Python
package (never a downloaded browser), against the app served on loopback."""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from accessibility import VIEWPORTS
from werkzeug.serving import make_server

from suppression.services.staff.accounts import create_staff_user

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
# The closed network: without these Chromium keeps trying to reach Google.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def live_server(app) -> Iterator[str]:
    """The test app on a free loopback port; yields its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join()


@pytest.fixture(scope="session")
def chromium():
    if not shutil.which(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(chromium):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def screenshot():
    """save(page, name): a full-page screenshot under test-output/ for reviewers."""

    def save(page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


STAFF_PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def make_staff_user(app, clock):
    """make_staff_user(username, role="staff") -> the username; its password is
    STAFF_PASSWORD."""

    def create(username: str, role: str = "staff", password: str = STAFF_PASSWORD) -> str:
        session = app.extensions["suppression"].sessions()
        create_staff_user(session, username, role, password, clock())
        session.commit()
        session.close()
        return username

    return create


def csrf_of(response) -> str:
    """The CSRF token in a staff page's form."""
    match = CSRF.search(response.get_data(as_text=True))
    assert match, "the page has no form with a CSRF token"
    return match.group(1)


@pytest.fixture
def sign_in(client, make_staff_user):
    """sign_in(username, role) -> the test client, signed in as a new account, and
    a CSRF token for its forms."""

    def enter(username: str = "alice", role: str = "staff"):
        make_staff_user(username, role)
        token = csrf_of(client.get("/admin/sign-in"))
        response = client.post(
            "/admin/sign-in",
            data={"username": username, "password": STAFF_PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 303, response.get_data(as_text=True)
        return client, csrf_of(client.get("/admin/"))

    return enter


@pytest.fixture
def csrf_from():
    """csrf_from(response) -> the CSRF token in the page's forms."""
    return csrf_of


@pytest.fixture
def page_at(chromium):
    """page_at(viewport) -> a page in a new browser context of that viewport
    ("desktop" or "phone", see tests/web/accessibility.py); closed after the test."""
    contexts = []

    def open_page(viewport: str):
        context = chromium.new_context(viewport=VIEWPORTS[viewport])
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()
