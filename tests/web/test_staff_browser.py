"""The staff pages in real Chromium: a staff member who has never seen the service
signs in, finds the address an email complaint named, reads when and how it
opted in, opts it out of everything, and an admin sees that lookup in the access
log. Screenshots of the main pages go to test-output/screenshots/."""

import re

import pytest

PASSWORD = "a passphrase for the browser test"
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def seeded(client, sender, make_staff_user):
    make_staff_user("sam", "staff", PASSWORD)
    make_staff_user("ada", "admin", PASSWORD)
    response = client.post(
        "/v1/consents",
        json={
            "email": "jane.doe@example.com",
            "purpose": "all",
            "status": "opted_in",
            "source": "signup_form",
            "occurred_at": "2026-05-14T08:30:00Z",
            "campaign": "spring-newsletter",
            "evidence": {"form": "footer-signup", "text_shown": "Send me offers"},
            "notice_version": "privacy-2026-04",
        },
        headers=sender,
    )
    assert response.status_code == 201


def sign_in(page, base, username):
    page.goto(f"{base}/admin/")
    assert "/admin/sign-in" in page.url
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))


def no_sideways_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.slow
def test_staff_find_an_address_read_its_history_opt_it_out_and_sign_out(
    seeded, live_server, page, screenshot
):
    page.goto(f"{live_server}/admin/")
    assert page.get_by_role("heading", name="Staff sign-in").is_visible()
    screenshot(page, "staff-sign-in")

    sign_in(page, live_server, "sam")
    assert page.get_by_role("heading", name="Find one address").is_visible()
    assert page.get_by_role("link", name="Access log").count() == 0  # not an admin

    # A typo first: the form says what is wrong.
    page.get_by_label("Email address").fill("jane.doe@")
    page.get_by_role("button", name="Search").click()
    assert "Not a valid email address" in page.locator(".field-error").inner_text()
    screenshot(page, "staff-search")

    page.get_by_label("Email address").fill("Jane.Doe@Example.com")
    page.get_by_label("Why you look it up").fill("Complaint email, ticket HD-314")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*/admin/subjects/\d+$"))
    assert "jane" not in page.url.lower()
    assert page.locator("h1").inner_text() == "jane.doe@example.com"

    # When and how it opted in, newest first.
    first = page.locator("table.timeline tbody tr").first
    row = first.inner_text()
    assert "2026-05-14 08:30:00 UTC" in row
    assert "opted in" in row
    assert "signup_form" in row
    assert "spring-newsletter" in row
    assert "footer-signup" in row
    assert "privacy-2026-04" in row
    decision = page.locator("tr", has_text="Email marketing").first.inner_text()
    assert "sendable" in decision
    screenshot(page, "staff-subject")

    # Opt out of all marketing, with the reason.
    page.locator("#opt-out-purpose").select_option("all")
    page.locator("#opt-out-channel").select_option("email_request")
    page.locator("#opt-out-reason").fill("Asked by email to stop all marketing (HD-314)")
    page.get_by_role("button", name="Opt out").click()
    page.wait_for_load_state()
    assert "Opted out of all marketing." in page.locator(".notice.ok").inner_text()
    decision = page.locator("tr", has_text="Email marketing").first.inner_text()
    assert "suppressed" in decision
    assert "opted_out" in decision
    newest = page.locator("table.timeline tbody tr").first.inner_text()
    assert "opted out" in newest
    assert "staff:sam" in newest
    assert "HD-314" in newest
    screenshot(page, "staff-subject-opted-out")

    page.get_by_role("link", name="Dashboard").click()
    assert page.get_by_role("heading", name="Dashboard").is_visible()
    assert page.locator("svg.chart-wide rect.bar").count() == 30
    screenshot(page, "staff-dashboard")

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/admin/sign-in$"))
    assert "You are signed out" in page.locator(".notice").inner_text()
    page.goto(f"{live_server}/admin/dashboard")
    assert "/admin/sign-in" in page.url


@pytest.mark.slow
def test_an_admin_sees_the_lookup_in_the_access_log(seeded, live_server, page, screenshot):
    sign_in(page, live_server, "sam")
    page.get_by_label("Email address").fill("jane.doe@example.com")
    page.get_by_label("Why you look it up").fill("Ticket HD-314")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r".*/admin/subjects/\d+$"))
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r".*/admin/sign-in$"))

    sign_in(page, live_server, "ada")
    page.get_by_role("link", name="Access log").click()
    row = page.locator("tbody tr").first.inner_text()
    assert "staff:sam" in row
    assert "lookup" in row
    assert "Ticket HD-314" in row
    assert "j***@example.com" in row
    screenshot(page, "staff-access-log")


@pytest.mark.slow
def test_the_subject_page_reads_on_a_phone(seeded, live_server, chromium, screenshot):
    context = chromium.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    try:
        sign_in(page, live_server, "sam")
        assert no_sideways_scroll(page)
        page.get_by_label("Email address").fill("jane.doe@example.com")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r".*/admin/subjects/\d+$"))
        assert page.locator("h1").is_visible()
        # Wide tables scroll inside their own box; the page itself does not.
        assert no_sideways_scroll(page)
        screenshot(page, "staff-subject-phone")
        page.get_by_role("link", name="Dashboard").click()
        assert no_sideways_scroll(page)
        screenshot(page, "staff-dashboard-phone")
    finally:
        context.close()
