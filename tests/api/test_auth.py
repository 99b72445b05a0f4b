import pytest

from suppression.services.staff.api_keys import revoke_api_key

CHECK = {"purpose": "email_marketing", "addresses": ["a@example.com"]}


def test_missing_key_is_401_in_the_error_shape(client):
    response = client.post("/v1/checks", json=CHECK)
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == 401
    assert body["status"] == "Unauthorized"
    assert "API key" in body["message"]


def test_unknown_key_is_401(client):
    response = client.post("/v1/checks", json=CHECK, headers={"Authorization": "Bearer sk_nope"})
    assert response.status_code == 401


def test_revoked_key_is_401(client, make_key, session, clock):
    headers = make_key("sender", "old-platform")
    assert client.post("/v1/checks", json=CHECK, headers=headers).status_code == 200
    revoke_api_key(session, "old-platform", clock())
    session.commit()
    assert client.post("/v1/checks", json=CHECK, headers=headers).status_code == 401


def test_staff_key_may_not_run_checks(client, staff):
    assert client.post("/v1/checks", json=CHECK, headers=staff).status_code == 403


@pytest.mark.parametrize("role", ["sender", "admin"])
def test_sender_and_admin_keys_may_run_checks(client, make_key, role):
    assert client.post("/v1/checks", json=CHECK, headers=make_key(role)).status_code == 200


@pytest.mark.parametrize("role", ["sender", "staff", "admin"])
def test_every_role_may_record_consent(client, make_key, role):
    body = {"email": "a@example.com", "purpose": "all", "status": "opted_out", "source": "test"}
    response = client.post("/v1/consents", json=body, headers=make_key(role))
    assert response.status_code == 201


def test_bad_body_without_a_key_is_still_401(client):
    assert client.post("/v1/consents", json={"nonsense": 1}).status_code == 401
