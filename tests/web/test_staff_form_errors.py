"""A staff form that comes back with errors says so where a screen reader and a phone
user meet it: "Error:" first in the title, a summary (role="alert") at the top of the
page with a link to each field, the focus (autofocus) on the first field to fix, and
the navigation still marking where the page belongs. Error pages keep the navigation."""

from __future__ import annotations

import re

from seeding import record

TITLE = re.compile(r"<title>([^<]*)</title>")


def title_of(html: str) -> str:
    match = TITLE.search(html)
    assert match
    return match.group(1)


def summary_of(html: str) -> str:
    start = html.index('<div class="error-summary" role="alert"')
    return html[start : html.index("</div>", start)]


def current_link(html: str) -> str:
    match = re.search(r'<a href="[^"]+" aria-current="page">([^<]+)</a>', html)
    assert match, "no navigation link is marked current"
    return match.group(1)


def subject_of(client, token, sender, email="jane@example.com") -> str:
    record(client, sender, email)
    response = client.post("/admin/search", data={"email": email, "csrf_token": token})
    assert response.status_code == 303
    return response.headers["Location"]


def test_an_empty_opt_out_is_summed_up_and_its_field_takes_the_focus(sign_in, sender):
    client, token = sign_in()
    subject = subject_of(client, token, sender)
    response = client.post(
        f"{subject}/opt-out",
        data={"purpose": "all", "channel": "email_request", "reason": " ", "csrf_token": token},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert title_of(html).startswith("Error: Subject ")
    summary = summary_of(html)
    assert "The opt-out was not recorded" in summary
    assert '<a href="#opt-out-reason">Say why' in summary
    field = re.search(r'<textarea id="opt-out-reason"[^>]*>', html).group(0)
    assert 'aria-invalid="true"' in field
    assert "autofocus" in field
    assert html.count("autofocus") == 1
    assert current_link(html) == "Search"


def test_the_first_invalid_field_in_the_pages_order_takes_the_focus(sign_in, sender):
    client, token = sign_in()
    subject = subject_of(client, token, sender)
    response = client.post(
        f"{subject}/opt-in",
        data={
            "purpose": "nothing-such",
            "channel": "email_request",
            "evidence": "",
            "occurred_at": "yesterday",
            "notice_version": "x" * 101,
            "csrf_token": token,
        },
    )
    html = response.get_data(as_text=True)
    links = re.findall(r'<a href="#([a-z-]+)">', summary_of(html))
    assert links == [
        "opt-in-purpose",
        "opt-in-evidence",
        "opt-in-occurred-at",
        "opt-in-notice-version",
    ]
    for field_id in links:  # every link leads to a field of that id
        assert f'id="{field_id}"' in html
    assert re.search(r'<select id="opt-in-purpose"[^>]*autofocus', html)
    assert html.count("autofocus") == 1


def test_an_erasure_not_confirmed_says_nothing_was_erased_at_the_top(sign_in, sender):
    client, token = sign_in("root", "admin")
    subject = subject_of(client, token, sender)
    response = client.post(f"{subject}/erase", data={"reason": "request", "csrf_token": token})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert title_of(html).startswith("Error: ")
    summary = summary_of(html)
    assert "Nothing was erased" in summary
    assert '<a href="#erase-confirm">Tick the box' in summary
    # The summary comes before the page's heading: the first thing on the page.
    assert html.index("error-summary") < html.index("<h1")
    assert re.search(r'<input type="checkbox" id="erase-confirm"[^>]*autofocus', html)
    assert '<label class="confirm-box" for="erase-confirm">' in html


def test_a_refusal_with_no_field_to_blame_puts_the_focus_on_the_summary(app):
    # A change the store refuses (a 409) names no field: the summary takes the focus.
    with app.test_request_context("/admin/"):
        macros = app.jinja_env.get_template("staff/macros.html").module
        summary = str(
            macros.error_summary({"_": "Refused by the store."}, "opt-in", None, "Not recorded")
        )
    assert 'role="alert"' in summary
    assert 'tabindex="-1" autofocus' in summary
    assert "<li>Refused by the store.</li>" in summary
    assert "<a href" not in summary


def test_a_search_error_and_an_unknown_long_address(sign_in):
    client, token = sign_in()
    html = client.post("/admin/search", data={"email": "jane@", "csrf_token": token}).get_data(
        as_text=True
    )
    assert title_of(html).startswith("Error: Search")
    assert '<a href="#search-email">' in summary_of(html)
    assert re.search(r'<input type="email" id="search-email"[^>]*autofocus', html)

    long = "someone.with.a.very.long.name+newsletters@subdomain.example-company.com"
    response = client.post("/admin/search", data={"email": long, "csrf_token": token})
    html = response.get_data(as_text=True)
    assert response.status_code == 404
    assert "error-summary" not in html
    assert f'<h2 id="not-found-title" class="address" tabindex="-1">Not found: {long}</h2>' in html


def test_the_unknown_addresss_opt_out_error_links_to_its_heading(sign_in):
    client, token = sign_in()
    response = client.post(
        "/admin/subjects/opt-out",
        data={
            "email": "not an address",
            "purpose": "all",
            "channel": "email_request",
            "reason": "Asked",
            "csrf_token": token,
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert '<a href="#not-found-title">' in summary_of(html)
    assert "The opt-out was not recorded" in summary_of(html)


def test_error_pages_keep_the_staff_navigation_and_its_place(sign_in):
    client, _token = sign_in()
    response = client.get("/admin/subjects/424242")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert title_of(html) == "Error: 404 Not Found · Suppression staff"
    assert '<nav aria-label="Staff pages">' in html
    assert current_link(html) == "Search"
    response = client.get("/admin/access-log")
    assert response.status_code == 403
    assert '<nav aria-label="Staff pages">' in response.get_data(as_text=True)


def test_a_signed_out_error_page_has_no_navigation(client):
    response = client.get("/admin/no-such-page")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "Suppression · staff" in html
    assert "<nav" not in html


def test_the_scroll_areas_are_focusable_and_labelled(sign_in, sender):
    client, token = sign_in()
    subject = subject_of(client, token, sender)
    for path in (subject, "/admin/dashboard"):
        html = client.get(path).get_data(as_text=True)
        areas = re.findall(r'<div class="table-scroll"[^>]*>', html)
        assert areas
        for area in areas:
            assert 'role="region"' in area
            assert 'tabindex="0"' in area
            assert "aria-label" in area
