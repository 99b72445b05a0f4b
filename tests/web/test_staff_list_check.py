"""Check a list (/admin/checks): a staff member uploads a send list and downloads
it cleaned; the answer is held sealed for the session, and each check is one
access-log entry."""

import io
import re

import pytest
from seeding import record
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from suppression.store.models import AccessLogEntry

EXPORT = (
    "\ufeffFirst name;Email;Country\n"
    "Jane;jane@example.com;\n"
    "Bob;bob@example.com;US\n"
    "Hans;hans@firma.de;\n"
    "Nope;not an address;\n"
    "Li;li@example.com;CA\n"
    "Plus;+tag@example.com;\n"
    'Formula;=HYPERLINK("http://evil.example");\n'
)


def upload(client, token, body, purpose="email_marketing", name="campaign.csv"):
    data = body.encode("utf-8") if isinstance(body, str) else body
    fields = {
        "csrf_token": token,
        "purpose": purpose,
        "list": FileStorage(io.BytesIO(data), name, content_type="text/csv"),
    }
    # Encoded in memory: the test client's own encoder spools a large body to a
    # temporary file it never closes.
    boundary, encoded = encode_multipart(fields)
    return client.post(
        "/admin/checks",
        data=encoded,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def held_files(settings):
    folder = settings.instance_path / "list-checks"
    return sorted(folder.glob("*.sealed")) if folder.exists() else []


@pytest.fixture
def checked(sign_in, client, sender):
    record(client, sender, "jane@example.com")
    staff, token = sign_in("sam", "staff")
    response = upload(staff, token, EXPORT)
    assert response.status_code == 303, response.get_data(as_text=True)
    assert response.headers["Location"] == "/admin/checks/result"
    return staff, token


def test_the_form_is_offered_to_staff_with_its_script_allowed(sign_in):
    staff, _token = sign_in("sam", "staff")
    response = staff.get("/admin/checks")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in html
    assert 'name="list"' in html
    assert "/static/list-check.js" in html
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert 'href="/admin/checks" aria-current="page"' in html


def test_the_answer_page_counts_every_reason_in_a_table_and_a_chart(checked):
    staff, _token = checked
    html = staff.get("/admin/checks/result").get_data(as_text=True)
    assert re.search(r'id="count-total">7<', html)
    assert re.search(r'id="count-sendable">2<', html)  # bob, +tag
    assert re.search(r'id="count-suppressed">5<', html)
    table = html[html.index('id="reason-counts"') :]
    for reason, count in [
        ("invalid", 2),
        ("opted_out", 1),
        ("eea", 1),
        ("opt_in_required", 1),
        ("erased", 0),
    ]:
        assert re.search(
            rf"<code>{reason}</code></th><td[^>]*>[^<]*</td><td[^>]*>{count}</td>", table
        )
    bars = re.findall(r'<rect class="(bar[^"]*)"[^>]*><title>([a-z_]+): (\d+)</title>', html)
    # The wide drawing and the phone's (CSS shows one) hold the same bars.
    assert bars[: len(bars) // 2] == bars[len(bars) // 2 :]
    assert bars[: len(bars) // 2] == [
        ("bar", "sendable", "2"),
        ("bar suppressed", "invalid", "2"),
        ("bar suppressed", "opted_out", "1"),
        ("bar suppressed", "eea", "1"),
        ("bar suppressed", "opt_in_required", "1"),
    ]
    assert "jane@example.com" not in html  # counts only, no address


def test_the_cleaned_list_holds_the_sendable_addresses_in_the_files_order(checked):
    staff, _token = checked
    response = staff.get("/admin/checks/result/cleaned.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == 'attachment; filename="cleaned-list.csv"'
    assert (
        response.get_data(as_text=True) == "\ufeffemail\r\nbob@example.com\r\n'+tag@example.com\r\n"
    )


def test_the_full_result_keeps_the_files_delimiter_and_every_row(checked):
    staff, _token = checked
    text = staff.get("/admin/checks/result/full.csv").get_data(as_text=True)
    assert text.split("\r\n") == [
        "\ufeffemail;sendable;reason",
        "jane@example.com;false;opted_out",
        "bob@example.com;true;",
        "hans@firma.de;false;eea",
        "not an address;false;invalid",
        "li@example.com;false;opt_in_required",
        "'+tag@example.com;true;",
        '\'=HYPERLINK(""http://evil.example"");false;invalid'.replace(
            '\'=HYPERLINK(""http://evil.example"")', '"\'=HYPERLINK(""http://evil.example"")"'
        ),
        "",
    ]


def test_formula_cells_are_quoted_in_the_pages_download_and_untouched_by_the_api(
    checked, client, sender
):
    staff, _token = checked
    page = staff.get("/admin/checks/result/full.csv").get_data(as_text=True)
    assert "'+tag@example.com" in page
    assert "'=HYPERLINK" in page
    assert "neutralis" not in page  # data only
    html = staff.get("/admin/checks/result").get_data(as_text=True)
    assert "starts with an apostrophe" in html  # the page says so
    api = client.post(
        "/v1/checks.csv",
        data=EXPORT.encode("utf-8"),
        content_type="text/csv",
        headers=sender,
    )
    assert api.status_code == 200
    assert api.get_data() == (
        b"email,sendable,reason\n"
        b"jane@example.com,false,opted_out\n"
        b"bob@example.com,true,\n"
        b"hans@firma.de,false,eea\n"
        b"not an address,false,invalid\n"
        b"li@example.com,false,opt_in_required\n"
        b"+tag@example.com,true,\n"
        b'"=HYPERLINK(""http://evil.example"")",false,invalid\n'
    )


def test_each_check_is_one_access_log_entry_without_addresses(checked, sign_in, session):
    staff, token = checked
    entries = list(session.scalars(select(AccessLogEntry)))
    assert [
        (e.actor, e.channel, e.action, e.purpose, e.row_count, e.subject_id) for e in entries
    ] == [("staff:sam", "page", "list_check", "email_marketing", 7, None)]
    session.rollback()  # on SQLite an open transaction holds the write lock
    staff.post("/admin/sign-out", data={"csrf_token": token})
    admin, _token = sign_in("root", "admin")
    html = admin.get("/admin/access-log").get_data(as_text=True)
    assert "list check" in html
    assert "7 rows, email marketing" in html
    assert "example.com" not in html


def test_the_held_answer_is_sealed_and_goes_with_a_new_check_and_sign_out(checked, settings):
    staff, token = checked
    [first] = held_files(settings)
    assert b"example.com" not in first.read_bytes()
    assert upload(staff, token, "email\nbob@example.com\n").status_code == 303
    [second] = held_files(settings)
    assert second != first  # the earlier answer is deleted
    assert staff.get("/admin/checks/result/cleaned.csv").get_data(as_text=True) == (
        "\ufeffemail\r\nbob@example.com\r\n"
    )
    staff.post("/admin/sign-out", data={"csrf_token": token})
    assert held_files(settings) == []


def test_the_held_answer_expires_after_an_hour(checked, clock, settings):
    staff, _token = checked
    clock.advance(minutes=61)
    response = staff.get("/admin/checks/result/cleaned.csv")
    assert response.status_code == 303
    assert response.headers["Location"] == "/admin/checks"
    assert held_files(settings) == []
    assert "upload it again" in staff.get("/admin/checks").get_data(as_text=True)


def test_without_a_checked_list_the_answer_pages_send_back_to_the_form(sign_in):
    staff, _token = sign_in("sam", "staff")
    for path in ("/admin/checks/result", "/admin/checks/result/full.csv"):
        response = staff.get(path)
        assert response.status_code == 303
        assert response.headers["Location"] == "/admin/checks"
    assert staff.get("/admin/checks/result/other.csv").status_code == 404


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "email\nok@example.com\nj\u00f6rg@example.com\n".encode("cp1252"),
            "not UTF-8 (line 3)",
        ),
        ("email\na@example.com\n".encode("utf-16"), "UTF-16"),
        ("address\na@example.com\n", "no `email` column"),
        ("", "The CSV is empty"),
        ("email,country\na@example.com,US\nb@example.com,QQ\n", "line 3: unknown country code"),
    ],
)
def test_a_list_that_cannot_be_read_says_why_and_checks_nothing(
    sign_in, session, settings, body, message
):
    staff, token = sign_in("sam", "staff")
    response = upload(staff, token, body)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)
    assert session.scalars(select(AccessLogEntry)).all() == []
    assert held_files(settings) == []


def test_the_form_asks_for_a_file_and_a_known_purpose(sign_in):
    staff, token = sign_in("sam", "staff")
    response = staff.post(
        "/admin/checks",
        data={"csrf_token": token, "purpose": "nope"},
        content_type="multipart/form-data",
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert "Choose the CSV file of the list." in html
    assert "Choose the purpose the list is for." in html


def test_an_upload_without_the_csrf_token_is_refused(sign_in, session, settings):
    staff, _token = sign_in("sam", "staff")
    response = upload(staff, "forged", "email\nbob@example.com\n")
    assert response.status_code == 400
    assert session.scalars(select(AccessLogEntry)).all() == []
    assert held_files(settings) == []


def test_a_list_larger_than_memory_spools_is_checked_in_order(sign_in):
    staff, token = sign_in("sam", "staff")
    rows = [f"user{n}@example.com" if n % 997 else f"bad {n}" for n in range(60_000)]
    body = "email\n" + "\n".join(rows) + "\n"  # over a MiB: spooled sealed to disk
    assert len(body) > 1024 * 1024
    assert upload(staff, token, body).status_code == 303
    cleaned = staff.get("/admin/checks/result/cleaned.csv").get_data(as_text=True)
    assert cleaned.split("\r\n")[1:-1] == [r for r in rows if not r.startswith("bad")]
