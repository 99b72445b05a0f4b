"""The access log page (admins): entries, filters, paging."""

import re
from functools import partial

from seeding import record
from sqlalchemy import select

from suppression.store.models import AccessLogEntry

consent = partial(record, purpose="all", source="email_request")


def test_the_page_lists_api_and_page_lookups_with_the_masked_address(
    sign_in, sender, make_key, client
):
    desk = make_key("staff", "desk")
    consent(client, sender, "jane@example.com")
    client.post("/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=desk)
    client.post("/v1/subjects/lookup", json={"email": "ghost@example.com"}, headers=desk)
    admin, _token = sign_in("root", "admin")
    html = admin.get("/admin/access-log").get_data(as_text=True)
    assert html.count('<td data-label="Who">api_key:desk</td>') == 2
    assert "j***@example.com" in html
    assert "jane@example.com" not in html
    assert "ghost" not in html
    assert "not found" in html


def test_filters_and_paging(sign_in, sender, make_key, client, session):
    desk = make_key("staff", "desk")
    other = make_key("staff", "other")
    consent(client, sender, "jane@example.com")
    for _ in range(55):
        client.post("/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=desk)
    client.post("/v1/subjects/lookup", json={"email": "jane@example.com"}, headers=other)
    admin, _token = sign_in("root", "admin")
    first = admin.get("/admin/access-log").get_data(as_text=True)
    assert first.count("<tr>") == 51  # a header row and 50 entries
    older = re.search(r'href="(/admin/access-log\?before=\d+)"', first).group(1)
    assert admin.get(older).get_data(as_text=True).count("<tr>") == 7
    only_other = admin.get("/admin/access-log?actor=api_key:other").get_data(as_text=True)
    assert only_other.count('<td data-label="Who">api_key:other</td>') == 1
    assert "api_key:desk" not in only_other.replace('placeholder="staff:alice or api_key:desk"', "")
    subject_id = session.scalar(select(AccessLogEntry.subject_id).limit(1))
    session.rollback()  # on SQLite an open transaction holds the write lock
    about = admin.get(f"/admin/access-log?subject_id={subject_id}").get_data(as_text=True)
    assert about.count('<td data-label="Who">api_key:') == 50
    assert admin.get("/admin/access-log?subject_id=abc").status_code == 400


def test_opening_a_subject_from_the_log_is_itself_logged(sign_in, sender, client, session):
    consent(client, sender, "jane@example.com")
    admin, token = sign_in("root", "admin")
    admin.post("/admin/search", data={"email": "jane@example.com", "csrf_token": token})
    html = admin.get("/admin/access-log").get_data(as_text=True)
    link = re.search(r'href="(/admin/subjects/\d+)"', html).group(1)
    assert admin.get(link).status_code == 200
    rows = list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.id)))
    assert [(r.actor, r.action) for r in rows] == [("staff:root", "lookup"), ("staff:root", "view")]
