"""Check a list in real Chromium, as a marketer would: sign in, upload a 100,000-row
CSV exported from a spreadsheet (a BOM, semicolons, Windows line ends, a few bad
rows), read the counts and the chart, download the cleaned list and open it: the
sendable addresses, in the file's order. Screenshots go to test-output/screenshots/."""

import re

import pytest
from seeding import record

PASSWORD = "a passphrase for the browser test"
ROWS = 100_000


def export(path):
    """The spreadsheet's export, and the addresses a check must leave in it."""
    lines = ["\ufeffName;Email;Country"]
    sendable = []
    for n in range(ROWS):
        if n % 20_000 == 7:
            lines.append(f"Broken {n};not an address {n};")  # a bad row
        elif n % 10_000 == 3:
            lines.append(f"Kunde {n};kunde{n}@firma.de;")  # EEA
        elif n % 25_000 == 11:
            lines.append(f"Quebec {n};q{n}@example.com;CA")  # Canada: opt-in required
        else:
            email = f"person{n}@example.com"
            lines.append(f"Person {n};{email};")
            if n % 5_000 != 0:  # those opted out before the campaign
                sendable.append(email)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return sendable


@pytest.mark.slow
def test_a_marketer_cleans_a_100000_row_export_in_chromium(
    client, sender, make_staff_user, live_server, page, screenshot, tmp_path
):
    make_staff_user("mia", "staff", PASSWORD)
    for n in range(0, ROWS, 5_000):
        record(client, sender, f"person{n}@example.com")
    source = tmp_path / "spring-campaign.csv"
    sendable = export(source)

    page.goto(f"{live_server}/admin/")
    page.get_by_label("Username").fill("mia")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r".*/admin/$"))
    errors = []
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.get_by_role("link", name="Check a list").click()
    assert page.get_by_role("heading", name="Check a list").is_visible()

    page.get_by_label("CSV file").set_input_files(str(source))
    page.get_by_label("Purpose").select_option("email_marketing")
    screenshot(page, "list-check-form")
    with page.expect_request(lambda request: request.resource_type == "xhr"):
        page.get_by_role("button", name="Check the list").click()  # with upload progress
    page.wait_for_url(re.compile(r".*/admin/checks/result$"), timeout=180_000)

    assert page.get_by_role("heading", name="List checked").is_visible()
    assert page.locator("#count-total").inner_text() == "100,000"
    assert page.locator("#count-sendable").inner_text() == f"{len(sendable):,}"
    assert page.locator("#count-suppressed").inner_text() == f"{ROWS - len(sendable):,}"
    table = page.locator("#reason-counts").inner_text()
    assert re.search(r"invalid\s.*\s5\n", table)
    assert re.search(r"eea\s.*\s10\n", table)
    assert re.search(r"opt_in_required\s.*\s4\n", table)
    chart = page.locator("figure.chart svg.chart-wide")
    assert chart.is_visible()
    assert chart.locator("rect.bar").count() == 5  # sendable, invalid, opted out, EEA, opt-in
    screenshot(page, "list-check-result")

    with page.expect_download() as download:
        page.get_by_role("link", name="Cleaned list").click()
    assert download.value.suggested_filename == "cleaned-list.csv"
    opened = download.value.path().read_bytes().decode("utf-8-sig")
    assert opened.split("\r\n") == ["email", *sendable, ""]
    assert errors == []  # no script or policy error on the way


@pytest.mark.slow
def test_without_javascript_the_plain_form_checks_the_list(
    make_staff_user, live_server, chromium, tmp_path
):
    make_staff_user("mia", "staff", PASSWORD)
    source = tmp_path / "small.csv"
    source.write_text("email\nbob@example.com\nhans@firma.de\n", encoding="utf-8")
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        page.goto(f"{live_server}/admin/checks")
        page.get_by_label("Username").fill("mia")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(re.compile(r".*/admin/checks$"))
        page.get_by_label("CSV file").set_input_files(str(source))
        page.get_by_role("button", name="Check the list").click()
        page.wait_for_url(re.compile(r".*/admin/checks/result$"))
        assert page.locator("#count-sendable").inner_text() == "1"
        assert page.locator("#count-suppressed").inner_text() == "1"
    finally:
        context.close()
