"""The recipients' pages for people on phones and with screen readers: every state of
the unsubscribe, preference and confirmation pages, the bad-link, too-many and error
pages at 1280x900 and 390x844 has no serious or critical axe-core violation, does not
scroll sideways and is screenshotted to test-output/screenshots/; unsubscribing and
changing a preference work by keyboard alone, and each answer is a page of its own
(title, focus on the message) after a redirect."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from accessibility import check_page, focused, tab_to
from smtp_server import smtp_server

from suppression.config.settings import LinkSettings, MailSettings

pytestmark = pytest.mark.slow

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@example.com"
CONTACT = "privacy@example.com"
DASH = "\N{EN DASH}"  # the separator in a result page's title
CONFIRM_LINK = re.compile(rf"{re.escape(ORIGIN)}(/confirm/\S+)")
BOTH = pytest.mark.parametrize("viewport", ["desktop", "phone"])


@pytest.fixture
def relay():
    with smtp_server() as server:
        yield server


@pytest.fixture
def page_limit() -> str:
    return "1000 per minute"


@pytest.fixture
def settings(make_settings, relay, page_limit):
    return replace(
        make_settings(),
        public_base_url=ORIGIN,
        unsubscribe_mailbox=MAILBOX,
        contact_mailbox=CONTACT,
        links=LinkSettings(page_rate_limit=page_limit, notice_version="preferences-1"),
        mail=MailSettings(smtp_url=relay.url, mail_from="news@example.com"),
    )


def links(client, sender, email: str) -> tuple[str, str]:
    """The unsubscribe and preference paths of a new link for the address."""
    response = client.post("/v1/unsubscribe-links", json={"email": email}, headers=sender)
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return urlsplit(body["url"]).path, urlsplit(body["preferences_url"]).path


def submit_without_a_button(page) -> None:
    """A form sent with no action (as a hand-made or broken client would): a 400 page."""
    with page.expect_navigation():
        page.evaluate("() => document.querySelector('main form').submit()")


def focus_is_on_the_message(page) -> bool:
    # The browser runs autofocus at its next rendering step, not at load: wait for it.
    page.wait_for_function("() => document.activeElement !== document.body")
    return page.evaluate(
        "() => document.activeElement !== document.body"
        " && document.activeElement.matches('.message, .message *')"
    )


@BOTH
def test_every_unsubscribe_page_state(client, sender, live_server, page_at, viewport):
    unsubscribe, _ = links(client, sender, "jane.doe@example.com")
    page = page_at(viewport)
    page.goto(live_server + unsubscribe)
    check_page(page, "unsubscribe", viewport)

    submit_without_a_button(page)
    assert page.title().startswith("Error: ")
    check_page(page, "unsubscribe-error", viewport)

    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_url(re.compile(r".*\?done=unsubscribed"))
    assert page.title().startswith("Unsubscribed")
    assert focus_is_on_the_message(page)
    check_page(page, "unsubscribed", viewport)


@BOTH
def test_every_preference_page_state(client, sender, live_server, page_at, viewport, relay):
    _, preferences = links(client, sender, "jane.doe@example.com")
    page = page_at(viewport)
    page.goto(live_server + preferences)
    assert "preferences-1" not in page.locator("main").inner_text()
    check_page(page, "preferences", viewport)

    page.get_by_label("Marketing email").uncheck()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(re.compile(r".*\?done=saved"))
    assert page.title().startswith(f"Saved {DASH} ")
    assert focus_is_on_the_message(page)
    check_page(page, "preferences-saved", viewport)

    page.get_by_label("Marketing email").check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(re.compile(r".*\?done=saved"))
    assert "check your inbox" in page.locator(".message").inner_text().lower()
    check_page(page, "preferences-confirmation-sent", viewport)

    submit_without_a_button(page)
    assert page.title().startswith("Error: ")
    assert focus_is_on_the_message(page)
    check_page(page, "preferences-error", viewport)

    page.get_by_role("button", name="Unsubscribe from everything").click()
    page.wait_for_url(re.compile(r".*\?done=all_out"))
    assert page.title().startswith(f"Unsubscribed {DASH} ")
    assert focus_is_on_the_message(page)
    check_page(page, "preferences-all-out", viewport)


@BOTH
def test_a_restricted_address_sees_locked_switches_and_whom_to_write_to(
    client, sender, live_server, page_at, viewport
):
    email = "held@example.com"
    response = client.post(
        "/v1/blocks", json={"email": email, "kind": "restriction"}, headers=sender
    )
    assert response.status_code in (200, 201), response.get_json()
    _, preferences = links(client, sender, email)
    page = page_at(viewport)
    page.goto(live_server + preferences)
    marketing = page.get_by_label("Marketing email")
    assert marketing.is_disabled()
    assert "Locked" in page.locator("fieldset").inner_text()
    assert page.get_by_role("button", name="Save my choices").count() == 0
    contact = page.get_by_role("link", name=CONTACT)
    assert contact.get_attribute("href") == f"mailto:{CONTACT}"
    assert page.get_by_role("link", name=MAILBOX).count() == 0
    check_page(page, "preferences-restricted", viewport)


@BOTH
def test_every_confirmation_page_state(client, sender, live_server, page_at, viewport, relay):
    _, preferences = links(client, sender, "li@example.ca")
    page = page_at(viewport)
    page.goto(live_server + preferences)
    page.get_by_label("Marketing email").check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(re.compile(r".*\?done=saved"))
    confirm = CONFIRM_LINK.search(relay.messages[-1].get_content()).group(1)

    page.goto(live_server + confirm)
    assert "preferences-1" not in page.locator("main").inner_text()
    check_page(page, "confirm", viewport)

    page.get_by_role("button", name="Yes, send me this").click()
    page.wait_for_url(re.compile(r".*\?done=confirmed"))
    assert page.title().startswith("Confirmed")
    assert focus_is_on_the_message(page)
    check_page(page, "confirmed", viewport)

    page.goto(live_server + confirm)
    check_page(page, "confirm-already", viewport)


@BOTH
def test_an_erased_address_and_a_refused_confirmation(
    client, sender, admin, live_server, page_at, viewport, relay
):
    _, held = links(client, sender, "held@example.ca")
    page = page_at(viewport)
    page.goto(live_server + held)
    page.get_by_label("Marketing email").check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_url(re.compile(r".*\?done=saved"))
    confirm = CONFIRM_LINK.search(relay.messages[-1].get_content()).group(1)
    client.post(
        "/v1/blocks", json={"email": "held@example.ca", "kind": "complaint"}, headers=sender
    )
    page.goto(live_server + confirm)
    page.get_by_role("button", name="Yes, send me this").click()
    page.wait_for_url(re.compile(r".*\?done=blocked"))
    assert page.title().startswith("Not switched on")
    assert focus_is_on_the_message(page)
    check_page(page, "confirm-refused", viewport)

    email = "gone@example.com"
    _, gone = links(client, sender, email)
    erased = client.post(
        "/v1/subjects/erase", json={"email": email, "reason": "request"}, headers=admin
    )
    assert erased.status_code == 200, erased.get_json()
    page.goto(live_server + gone)
    assert "erased what we held" in page.locator("main").inner_text()
    check_page(page, "preferences-erased", viewport)


@BOTH
def test_the_bad_link_and_error_pages(client, sender, live_server, page_at, viewport, clock):
    unsubscribe, _ = links(client, sender, "jane.doe@example.com")
    page = page_at(viewport)
    response = page.goto(live_server + unsubscribe[:-6])
    assert response.status == 400
    assert page.title().startswith("Error: ")
    check_page(page, "bad-link", viewport)

    clock.advance(days=400)
    response = page.goto(live_server + unsubscribe)
    assert response.status == 400
    assert page.title().startswith("Error: ")
    check_page(page, "bad-link-expired", viewport)

    response = page.goto(live_server + "/preferences/no/such-page")
    assert response.status == 404
    assert page.title().startswith("Error: ")
    check_page(page, "not-found", viewport)


@BOTH
@pytest.mark.parametrize("page_limit", ["1 per minute"])
def test_the_too_many_requests_page(client, sender, live_server, page_at, viewport):
    unsubscribe, _ = links(client, sender, "jane.doe@example.com")
    page = page_at(viewport)
    assert page.goto(live_server + unsubscribe).status == 200
    response = page.goto(live_server + unsubscribe)
    assert response.status == 429
    assert page.title().startswith("Error: ")
    check_page(page, "too-many", viewport)


def test_unsubscribing_by_keyboard_alone(client, sender, live_server, page_at):
    unsubscribe, _ = links(client, sender, "jane.doe@example.com")
    page = page_at("phone")
    page.goto(live_server + unsubscribe)
    tab_to(page, "Unsubscribe")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("heading", level=1).inner_text() == "You are unsubscribed"
    assert focus_is_on_the_message(page)
    response = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "email_marketing", "addresses": ["jane.doe@example.com"]},
        headers=sender,
    )
    assert response.get_json()["results"][0]["reason"] == "opted_out"


def test_changing_a_preference_by_keyboard_alone(client, sender, live_server, page_at):
    _, preferences = links(client, sender, "jane.doe@example.com")
    page = page_at("phone")
    page.goto(live_server + preferences)
    assert tab_to(page, "Personalised ads")["tag"] == "input"
    page.keyboard.press("Space")
    assert not page.get_by_label("Personalised ads").is_checked()
    tab_to(page, "Save my choices")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.title().startswith(f"Saved {DASH} ")
    assert focus_is_on_the_message(page)
    assert focused(page)["name"].startswith("Saved.")
    assert not page.get_by_label("Personalised ads").is_checked()
    assert page.get_by_label("Marketing email").is_checked()


RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  let node = el.parentElement, background = "rgb(255, 255, 255)";
  for (; node; node = node.parentElement) {
    const color = getComputedStyle(node).backgroundColor;
    if (color !== "rgba(0, 0, 0, 0)" && color !== "transparent") { background = color; break; }
  }
  return {ring: style.outlineColor, width: parseFloat(style.outlineWidth),
          outline: style.outlineStyle, background};
}"""


def luminance(color: str) -> float:
    red, green, blue = (int(part) / 255 for part in re.findall(r"\d+", color)[:3])

    def linear(channel: float) -> float:
        return channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4

    return 0.2126 * linear(red) + 0.7152 * linear(green) + 0.0722 * linear(blue)


def contrast(first: str, second: str) -> float:
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_focus_ring_has_3_to_1_contrast_on_every_background(
    client, sender, live_server, page_at
):
    """WCAG 1.4.11: every control the keyboard reaches on the preference page (on
    white, in the grey answer and the yellow notice) and the focused answer itself."""
    email = "held@example.com"
    client.post("/v1/blocks", json={"email": email, "kind": "objection"}, headers=sender)
    _, held = links(client, sender, email)
    _, preferences = links(client, sender, "jane.doe@example.com")
    page = page_at("phone")
    seen = set()
    for path, action in ((held, None), (preferences, "Save my choices")):
        page.goto(live_server + path)
        if action:
            page.get_by_role("button", name=action).click()
            page.wait_for_url(re.compile(r".*\?done="))
            # Chromium applies autofocus at a rendering step that may follow the
            # load event: wait for it, as the other focus tests do.
            page.wait_for_function("() => document.activeElement !== document.body")
            ring = page.evaluate(RING)  # the answer, focused on load
            assert contrast(ring["ring"], ring["background"]) >= 3, ring
        for _ in range(12):
            page.keyboard.press("Tab")
            ring = page.evaluate(RING)
            if ring is None:  # past the last control
                break
            assert ring["outline"] == "solid", ring
            assert ring["width"] >= 2, ring
            assert contrast(ring["ring"], ring["background"]) >= 3, ring
            seen.add(ring["background"])
    assert len(seen) >= 2  # white and the yellow of the locked notice at least


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_each_switch_is_a_44_px_target_that_says_on_or_off(
    client, sender, live_server, page_at, viewport
):
    _, preferences = links(client, sender, "jane.doe@example.com")
    page = page_at(viewport)
    page.goto(live_server + preferences)
    for name in ("Marketing email", "Personalised ads"):
        switch = page.get_by_label(name)
        box = switch.bounding_box()
        assert box["width"] >= 44, box
        assert box["height"] >= 44, box
        row = page.locator("label.switch", has=switch).bounding_box()
        assert row["height"] >= 44, row
    row = page.locator("label.switch").first
    assert row.locator(".state").inner_text() == "On"
    row.click()  # the label's text toggles it too
    assert not page.get_by_label("Marketing email").is_checked()
    assert row.locator(".state").inner_text() == "Off"
