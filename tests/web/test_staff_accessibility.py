"""The staff pages for people on phones and with screen readers: every state of the
pages under /admin/ (sign-in, search, a subject with a long history, each form and
its errors, the rights forms, the admin pages, Check a list and the error pages) at
1280x900 and 390x844 has no serious or critical axe-core violation, does not scroll
sideways and is screenshotted to test-output/screenshots/; searching, recording an
opt-out and erasing with its confirmation work by keyboard alone, and a form that
comes back with errors says so in its title, sums them up at the top (each a link to
its field) and puts the focus on the first field to fix."""

from __future__ import annotations

import re

import pytest
from accessibility import check_page, focused, tab_to
from seeding import block, record

from suppression.store.models import UnsubscribeAlarm

pytestmark = pytest.mark.slow

PASSWORD = "a passphrase for the accessibility test"
BOTH = pytest.mark.parametrize("viewport", ["desktop", "phone"])
LONG_ADDRESS = "someone.with.a.very.long.name.indeed+newsletters-2026@subdomain.example-company.com"
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Pro Build/UQ1A.240205.004; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/121.0.6167.178 Mobile Safari/537.36"
)


@pytest.fixture
def people(client, sender, make_staff_user, session, clock):
    """Two staff accounts, a subject with a long history, a second with a restriction,
    an alarm, and a lookup in the access log."""
    make_staff_user("ada", "admin", PASSWORD)
    make_staff_user("sam", "staff", PASSWORD)
    make_staff_user("former", "staff", PASSWORD)
    for n in range(11):  # opted in through the year, then opted out again and again
        record(
            client,
            {**sender, "User-Agent": USER_AGENT},
            "jane.doe@example.com",
            status="opted_in" if n < 5 else "opted_out",
            purpose="all",
            source="signup_form" if n < 5 else "preference_page",
            occurred_at=f"2026-{n + 1:02d}-10T08:30:00Z",
            campaign=f"spring-newsletter-{n}",
            evidence={
                "form": "footer-signup",
                "text_shown": "Send me offers and news about products, events and partners. " * 3,
            },
            notice_version="privacy-2026-04",
        )
    record(client, sender, "bob@example.com", status="opted_in", purpose="all")
    block(client, sender, "bob@example.com", "restriction")
    session.add(
        UnsubscribeAlarm(
            domain="bigcorp.example",
            campaign="black-friday-with-a-long-campaign-name",
            count=240,
            first_at=clock(),
            last_at=clock(),
            raised_at=clock(),
        )
    )
    session.commit()


def sign_in(page, base, username="ada", password=PASSWORD):
    page.goto(f"{base}/admin/sign-in")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()


def search(page, email):
    page.get_by_label("Email address").fill(email)
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()


def open_subject(page, base, email) -> str:
    page.goto(f"{base}/admin/")
    search(page, email)
    assert re.search(r"/admin/subjects/\d+$", page.url)
    return page.url


def focus_id(page) -> str:
    """The id of what has the focus once autofocus has run: the browser runs it at the
    page's next rendering step, which may come after the load event."""
    page.wait_for_function("() => document.activeElement !== document.body")
    return page.evaluate("() => document.activeElement.id")


def summary_links(page) -> list[str]:
    return page.locator(".error-summary[role=alert] a").evaluate_all(
        "links => links.map(a => a.getAttribute('href'))"
    )


def without_the_browsers_check(page) -> None:
    """The server's own answer to a form: the browser's `required` check off."""
    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")


def submit_by_enter(page) -> None:
    """Enter on the focused control, and the page it leads to, loaded."""
    with page.expect_navigation():
        page.keyboard.press("Enter")
    page.wait_for_load_state()


def current_section(page) -> str:
    return page.locator("nav [aria-current=page]").inner_text()


@BOTH
def test_sign_in_search_and_not_found(people, live_server, page_at, viewport):
    page = page_at(viewport)
    page.goto(f"{live_server}/admin/")
    check_page(page, "staff-sign-in", viewport)

    sign_in(page, live_server, password="not the password at all")
    assert page.title().startswith("Error: ")
    check_page(page, "staff-sign-in-error", viewport)

    sign_in(page, live_server)
    check_page(page, "staff-search", viewport)

    search(page, "jane.doe@")
    assert page.title().startswith("Error: ")
    assert summary_links(page) == ["#search-email"]
    assert focus_id(page) == "search-email"
    check_page(page, "staff-search-error", viewport)

    search(page, LONG_ADDRESS)
    assert page.get_by_role("heading", name=f"Not found: {LONG_ADDRESS}").is_visible()
    check_page(page, "staff-search-not-found", viewport)

    without_the_browsers_check(page)
    page.get_by_role("button", name="Record opt-out anyway").click()
    page.wait_for_load_state()
    assert page.title().startswith("Error: ")
    assert summary_links(page) == ["#new-opt-out-reason"]
    assert focus_id(page) == "new-opt-out-reason"
    assert current_section(page) == "Search"
    check_page(page, "staff-search-not-found-opt-out-error", viewport)


@BOTH
def test_a_subject_with_a_long_history_and_its_forms(people, live_server, page_at, viewport):
    page = page_at(viewport)
    sign_in(page, live_server)
    subject = open_subject(page, live_server, "jane.doe@example.com")
    assert page.locator("table.timeline tbody tr").count() == 11
    if viewport == "phone":
        # Stacked entries: no cell squeezed to a sliver.
        widths = page.locator("table.timeline td[data-label=Evidence]").evaluate_all(
            "cells => cells.map(c => c.getBoundingClientRect().width)"
        )
        assert min(widths) > 300
    check_page(page, "staff-subject", viewport)

    # Each form sent empty: its errors head the page, the first field has the focus.
    forms = [
        ("Opt out", "opt-out-reason", "staff-subject-opt-out-error"),
        ("Record opt-in", "opt-in-evidence", "staff-subject-opt-in-error"),
        ("Set as declared", "jurisdiction-country", "staff-subject-jurisdiction-error"),
        ("Erase", "erase-confirm", "staff-subject-erase-error"),
    ]
    for button, first_field, name in forms:
        page.goto(subject)
        without_the_browsers_check(page)
        page.get_by_role("button", name=button, exact=True).click()
        page.wait_for_load_state()
        assert page.title().startswith("Error: "), name
        assert summary_links(page)[0] == f"#{first_field}"
        assert focus_id(page) == first_field
        assert page.locator(f"#{first_field}").get_attribute("aria-invalid") == "true"
        assert current_section(page) == "Search"
        check_page(page, name, viewport)

    # The rights pages: a restricted subject, then an erased one.
    open_subject(page, live_server, "bob@example.com")
    check_page(page, "staff-subject-restricted", viewport)
    page.get_by_label("I understand this cannot be undone").check()
    page.get_by_role("button", name="Erase", exact=True).click()
    page.wait_for_load_state()
    assert page.get_by_role("heading", name="Erased subject").is_visible()
    check_page(page, "staff-subject-erased", viewport)


@BOTH
def test_the_dashboard_and_the_admin_pages(people, live_server, page_at, viewport):
    page = page_at(viewport)
    sign_in(page, live_server, "sam")
    open_subject(page, live_server, "jane.doe@example.com")  # a lookup for the access log
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/admin/sign-in$"))
    sign_in(page, live_server)

    page.goto(f"{live_server}/admin/dashboard")
    # On a phone, the drawing with fewer labels, each at least 11 px high on screen.
    chart = page.locator(f"svg.chart-{'narrow' if viewport == 'phone' else 'wide'}")
    assert chart.is_visible()
    heights = chart.locator("text.tick").evaluate_all(
        "labels => labels.map(l => l.getBoundingClientRect().height)"
    )
    assert min(heights) >= 11
    assert page.locator("figure.chart svg:visible").count() == 1
    check_page(page, "staff-dashboard", viewport)

    for path, name in [
        ("/admin/destinations", "staff-destinations"),
        ("/admin/access-log", "staff-access-log"),
        ("/admin/accounts", "staff-accounts"),
        ("/admin/account", "staff-account"),
    ]:
        page.goto(live_server + path)
        check_page(page, name, viewport)

    # The accounts' action sits beside the account's name on a phone too.
    page.goto(f"{live_server}/admin/accounts")
    name = page.get_by_role("rowheader", name="former").bounding_box()
    action = page.get_by_role("button", name="Disable former").bounding_box()
    assert action["x"] + action["width"] <= page.viewport_size["width"]
    assert abs((action["y"] + action["height"] / 2) - (name["y"] + name["height"] / 2)) < 24

    without_the_browsers_check(page)
    page.get_by_role("button", name="Create account").click()
    page.wait_for_load_state()
    assert page.title().startswith("Error: ")
    assert focus_id(page) == summary_links(page)[0][1:]
    assert current_section(page) == "Accounts"
    check_page(page, "staff-accounts-error", viewport)

    page.goto(f"{live_server}/admin/account")
    page.locator("#pw-current-password").fill("not my password at all")
    page.locator("#pw-new-password").fill("a new password that is long")
    page.locator("#pw-confirm-password").fill("a new password that is long")
    page.get_by_role("button", name="Change password").click()
    page.wait_for_load_state()
    assert page.title().startswith("Error: ")
    assert focus_id(page) == "pw-current-password"
    check_page(page, "staff-account-error", viewport)


@BOTH
def test_check_a_list_and_its_answer(people, live_server, page_at, viewport, tmp_path):
    page = page_at(viewport)
    sign_in(page, live_server)
    page.goto(f"{live_server}/admin/checks")
    check_page(page, "staff-list-check", viewport)

    with page.expect_navigation():  # sent without a file, and without the page's script
        page.evaluate("() => document.getElementById('list-check-form').submit()")
    assert page.title().startswith("Error: ")
    assert summary_links(page) == ["#list-check-list"]
    assert focus_id(page) == "list-check-list"
    assert current_section(page) == "Check a list"
    check_page(page, "staff-list-check-error", viewport)

    source = tmp_path / "list.csv"
    source.write_text(
        "email,country\njane.doe@example.com,US\nbob@example.com,US\nnot an address,\n"
        f"{LONG_ADDRESS},US\nkunde@firma.de,DE\n",
        encoding="utf-8",
    )
    page.get_by_label("CSV file").set_input_files(str(source))
    page.get_by_role("button", name="Check the list").click()
    page.wait_for_url(re.compile(r".*/admin/checks/result$"))
    assert page.locator("#count-total").inner_text() == "5"
    assert page.locator("figure.chart svg:visible").count() == 1
    check_page(page, "staff-list-check-result", viewport)


@BOTH
def test_the_error_pages_keep_the_navigation(people, live_server, page_at, viewport):
    page = page_at(viewport)
    page.goto(f"{live_server}/admin/no-such-page")
    check_page(page, "staff-error-signed-out", viewport)

    sign_in(page, live_server, "sam")
    response = page.goto(f"{live_server}/admin/subjects/999999")
    assert response.status == 404
    assert page.title().startswith("Error: 404")
    assert current_section(page) == "Search"
    check_page(page, "staff-error-404", viewport)

    response = page.goto(f"{live_server}/admin/access-log")
    assert response.status == 403
    assert page.get_by_role("navigation", name="Staff pages").is_visible()
    check_page(page, "staff-error-403", viewport)


def test_search_by_keyboard_alone(people, live_server, page_at):
    page = page_at("desktop")
    page.goto(f"{live_server}/admin/")
    assert focus_id(page) == "username"  # the sign-in form takes the focus
    page.keyboard.type("sam")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    submit_by_enter(page)
    assert page.url.endswith("/admin/")

    tab_to(page, "Email address")
    page.keyboard.type("Jane.Doe@Example.com")
    tab_to(page, "Why you look it up")
    page.keyboard.type("Ticket HD-314")
    assert tab_to(page, "Search")["tag"] == "button"
    submit_by_enter(page)
    assert re.search(r"/admin/subjects/\d+$", page.url)
    assert page.locator("h1").inner_text() == "jane.doe@example.com"

    # The history scrolls in no box of its own; the tables that do are reachable.
    for region in page.locator(".table-scroll").all():
        assert region.get_attribute("tabindex") == "0"
        assert region.get_attribute("role") == "region"


def test_record_an_opt_out_by_keyboard_alone(people, live_server, page_at):
    page = page_at("desktop")
    sign_in(page, live_server, "sam")
    open_subject(page, live_server, "jane.doe@example.com")

    # A reason of spaces only: the error is announced and the focus is on the field.
    tab_to(page, "Reason (required)")
    assert focused(page)["id"] == "opt-out-reason"
    page.keyboard.type("   ")
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "Opt out"
    submit_by_enter(page)
    assert page.title().startswith("Error: ")
    summary = page.locator(".error-summary")
    assert summary.get_attribute("role") == "alert"
    assert "Say why" in summary.inner_text()
    assert focus_id(page) == "opt-out-reason"

    page.keyboard.press("Control+A")
    page.keyboard.type("Asked by email to stop all marketing (HD-314)")
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "Opt out"
    submit_by_enter(page)
    assert not page.title().startswith("Error: ")
    assert "Opted out of all marketing." in page.locator(".notice.ok").inner_text()
    assert "staff:sam" in page.locator("table.timeline tbody tr").first.inner_text()


def test_erase_with_its_confirmation_by_keyboard_alone(people, live_server, page_at):
    page = page_at("desktop")
    sign_in(page, live_server)
    open_subject(page, live_server, "jane.doe@example.com")

    # Erase without ticking the box: nothing happens, and the focus lands on the box.
    tab_to(page, "I understand this cannot be undone")
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "Erase"
    submit_by_enter(page)
    assert page.title().startswith("Error: ")
    assert "Nothing was erased" in page.locator(".error-summary").inner_text()
    assert focus_id(page) == "erase-confirm"
    assert page.locator("h1").inner_text() == "jane.doe@example.com"

    page.keyboard.press("Space")
    assert page.locator("#erase-confirm").is_checked()
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "Erase"
    submit_by_enter(page)
    assert "Erased by staff:ada" in page.locator(".notice.ok").inner_text()
    assert page.get_by_role("heading", name="Erased subject").is_visible()
