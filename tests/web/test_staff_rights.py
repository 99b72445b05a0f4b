"""Export and erase from the subject page."""

import hashlib
import json

import pytest
from sqlalchemy import select

from suppression.store.models import AccessLogEntry, HashedSuppression, Subject


def subject_url(client, token, sender, email="jane@example.com"):
    client.post(
        "/v1/consents",
        json={
            "email": email,
            "purpose": "all",
            "status": "opted_in",
            "source": "form",
            "evidence": {"form": "footer"},
        },
        headers=sender,
    )
    response = client.post("/admin/search", data={"email": email, "csrf_token": token})
    assert response.status_code == 303
    return response.headers["Location"]


def test_staff_download_an_export_that_is_logged(sign_in, sender, session):
    client, token = sign_in("alice", "staff")
    url = subject_url(client, token, sender)
    response = client.post(f"{url}/export", data={"csrf_token": token, "reason": "DSAR-3"})
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment;")
    document = json.loads(response.get_data())
    assert document["email"] == "jane@example.com"
    assert document["events"][0]["evidence"] == {"form": "footer"}
    actions = session.scalars(select(AccessLogEntry.action).order_by(AccessLogEntry.id)).all()
    assert actions == ["lookup", "export"]


def test_the_export_needs_the_csrf_token(sign_in, sender):
    client, token = sign_in("alice", "staff")
    url = subject_url(client, token, sender)
    assert client.post(f"{url}/export", data={}).status_code == 400


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_staff_see_no_erase_button_and_may_not_erase(sign_in, sender):
    client, token = sign_in("alice", "staff")
    url = subject_url(client, token, sender)
    assert b"Download export" in client.get(url).data
    assert b'/erase"' not in client.get(url).data
    response = client.post(
        f"{url}/erase", data={"csrf_token": token, "reason": "request", "confirm": "yes"}
    )
    assert response.status_code == 403


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_an_admin_erases_and_the_page_shows_the_erased_subject(sign_in, sender, session):
    client, token = sign_in("root", "admin")
    url = subject_url(client, token, sender)
    unconfirmed = client.post(f"{url}/erase", data={"csrf_token": token, "reason": "request"})
    assert unconfirmed.status_code == 422
    assert b"cannot be undone" in unconfirmed.data
    response = client.post(
        f"{url}/erase", data={"csrf_token": token, "reason": "child", "confirm": "yes"}
    )
    assert response.status_code == 303
    page = client.get(url)
    assert b"Erased subject" in page.data
    assert b"jane@example.com" not in page.data
    subject = session.scalars(select(Subject)).one()
    assert (subject.erase_reason, subject.email_sealed) == ("child", None)
    check = client.post(
        "/v1/checks?detail=all", json={"addresses": ["jane@example.com"]}, headers=sender
    )
    assert check.get_json()["results"][0]["reason"] == "erased"


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasing_from_the_page_removes_an_imported_hash_of_the_address(
    sign_in, sender, admin, session
):
    hashed = hashlib.sha256(b"jane@example.com").hexdigest()
    body = f"email_sha256\n{hashed}\n".encode()
    client, token = sign_in("root", "admin")
    url = subject_url(client, token, sender)
    client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    assert hashed in client.get("/v1/suppressions.csv", headers=admin).text
    response = client.post(
        f"{url}/erase", data={"csrf_token": token, "reason": "request", "confirm": "yes"}
    )
    assert response.status_code == 303
    assert session.scalars(select(HashedSuppression)).all() == []
    assert hashed not in client.get("/v1/suppressions.csv", headers=admin).text
    check = client.post(
        "/v1/checks?detail=all", json={"addresses": ["jane@example.com"]}, headers=sender
    )
    assert check.get_json()["results"][0]["reason"] == "erased"
