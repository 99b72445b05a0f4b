"""Who may open which staff page and do which action."""

import pytest
from sqlalchemy import select

from suppression.store.models import StaffUser, Subject

STAFF_PAGES = ["/admin/", "/admin/dashboard", "/admin/account", "/admin/subjects/{id}"]
ADMIN_PAGES = ["/admin/access-log", "/admin/accounts"]
ADMIN_LINKS = [b'href="/admin/access-log"', b'href="/admin/accounts"']


@pytest.fixture
def subject_id(client, sender, session):
    response = client.post(
        "/v1/consents",
        json={
            "email": "jane@example.com",
            "purpose": "all",
            "status": "opted_in",
            "source": "signup_form",
        },
        headers=sender,
    )
    assert response.status_code == 201
    found = session.scalar(select(Subject.id))
    session.rollback()  # on SQLite an open transaction holds the write lock
    return found


def staff_actions(subject_id, token):
    base = f"/admin/subjects/{subject_id}"
    return {
        "/admin/search": {"email": "jane@example.com"},
        f"{base}/opt-out": {"purpose": "all", "channel": "phone", "reason": "asked"},
        f"{base}/opt-in": {"purpose": "all", "channel": "phone", "evidence": "signed form"},
        f"{base}/jurisdiction": {"country": "US", "reason": "said so"},
        "/admin/subjects/opt-out": {
            "email": "new@example.com",
            "purpose": "all",
            "channel": "phone",
            "reason": "asked",
        },
    }


def admin_actions():
    return {
        "/admin/accounts": {"username": "carol", "role": "admin", "password": "x" * 20},
        "/admin/accounts/bob/disable": {},
        "/admin/accounts/bob/enable": {},
    }


def test_a_stranger_is_sent_to_sign_in_from_every_page_and_action(client, subject_id):
    paths = [p.format(id=subject_id) for p in STAFF_PAGES + ADMIN_PAGES]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 303, path
        assert response.headers["Location"].startswith("/admin/sign-in")
    for path in [*staff_actions(subject_id, ""), *admin_actions()]:
        response = client.post(path, data={})
        assert response.status_code == 303, path
        assert response.headers["Location"] == "/admin/sign-in"


def test_staff_open_every_staff_page_and_see_no_admin_links(sign_in, subject_id):
    client, _token = sign_in("alice", "staff")
    for path in STAFF_PAGES:
        response = client.get(path.format(id=subject_id))
        assert response.status_code == 200, path
        for link in ADMIN_LINKS:
            assert link not in response.data, path


def test_staff_get_403_on_every_admin_page(sign_in):
    client, _token = sign_in("alice", "staff")
    for path in ADMIN_PAGES:
        response = client.get(path)
        assert response.status_code == 403, path
        assert response.mimetype == "text/html"
        assert b"Only an admin" in response.data


def test_staff_may_do_every_staff_action(sign_in, subject_id):
    client, token = sign_in("alice", "staff")
    for path, data in staff_actions(subject_id, token).items():
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 303, (path, response.get_data(as_text=True)[-400:])


def test_staff_get_403_on_every_admin_action_and_nothing_changes(sign_in, make_staff_user, session):
    make_staff_user("bob")
    client, token = sign_in("alice", "staff")
    for path, data in admin_actions().items():
        response = client.post(path, data={**data, "csrf_token": token})
        assert response.status_code == 403, path
    users = {u.username: u for u in session.scalars(select(StaffUser))}
    assert set(users) == {"alice", "bob"}
    assert users["bob"].disabled_at is None


def test_admins_see_the_admin_links_and_open_the_admin_pages(sign_in, subject_id):
    client, _token = sign_in("root", "admin")
    page = client.get("/admin/")
    for link in ADMIN_LINKS:
        assert link in page.data
    for path in ADMIN_PAGES:
        assert client.get(path).status_code == 200, path


def test_admins_create_disable_and_enable_accounts(sign_in, session, csrf_from, app):
    client, token = sign_in("root", "admin")
    response = client.post(
        "/admin/accounts",
        data={
            "username": "Carol",
            "role": "staff",
            "password": "carol's long passphrase",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    assert b"Account carol (staff) created" in client.get("/admin/accounts").data
    carol = app.test_client()
    carol.post(
        "/admin/sign-in",
        data={
            "username": "carol",
            "password": "carol's long passphrase",
            "csrf_token": csrf_from(carol.get("/admin/sign-in")),
        },
    )
    assert carol.get("/admin/").status_code == 200
    client.post("/admin/accounts/carol/disable", data={"csrf_token": token})
    assert carol.get("/admin/").status_code == 303
    client.post("/admin/accounts/carol/enable", data={"csrf_token": token})
    user = session.scalars(select(StaffUser).where(StaffUser.username == "carol")).one()
    assert user.disabled_at is None


def test_a_bad_new_account_is_refused_naming_the_field(sign_in):
    client, token = sign_in("root", "admin")
    response = client.post(
        "/admin/accounts",
        data={"username": "dave", "role": "staff", "password": "short", "csrf_token": token},
    )
    assert response.status_code == 422
    assert b"At least 12 characters" in response.data
    assert b"dave" in response.data


def test_an_admin_cannot_disable_their_own_account(sign_in):
    client, token = sign_in("root", "admin")
    response = client.post("/admin/accounts/root/disable", data={"csrf_token": token})
    assert response.status_code == 409
    assert client.get("/admin/").status_code == 200
