"""/metrics: label values from fixed sets only, and the METRICS_TOKEN guard."""

from __future__ import annotations

from dataclasses import replace

import pytest

METRICS_TOKEN = "mt_4f9c1e7a2b8d6053e1c4a9f7b2d8e6a1"


def _series(body: str) -> set[str]:
    """The names and labels of every sample the service exports."""
    return {
        line.rpartition(" ")[0]
        for line in body.splitlines()
        if line.startswith("suppression_") and not line.startswith("#")
    }


def test_made_up_http_methods_do_not_grow_metrics(client):
    client.open("/healthz", method="BREW")  # the one `other` series exists from here on
    client.open("/no-such-page", method="BREW")
    client.get("/metrics")
    before = client.get("/metrics").get_data(as_text=True)
    for n in range(3000):
        answer = client.open("/healthz" if n % 2 else "/no-such-page", method=f"X{n}Y")
        assert answer.status_code in (404, 405)
    after = client.get("/metrics").get_data(as_text=True)
    assert _series(after) == _series(before)
    assert "X2999Y" not in after
    assert 'method="other"' in after
    # Only the counts moved: a few digits, not a series per method.
    assert len(after) - len(before) < 500


def test_a_source_holding_an_address_never_appears_on_metrics(client, sender):
    for path, body in (
        ("/v1/consents", {"purpose": "email_marketing", "status": "opted_out"}),
        ("/v1/blocks", {"kind": "complaint"}),
    ):
        response = client.post(
            path,
            json={"email": "jane@example.com", "source": "reply from jane@example.com", **body},
            headers=sender,
        )
        assert response.status_code == 201, response.get_json()
    response = client.post(
        "/v1/consents",
        json={
            "email": "bob@example.com",
            "purpose": "email_marketing",
            "status": "opted_out",
            "source": "phone",
        },
        headers=sender,
    )
    assert response.status_code == 201
    page = client.get("/metrics").get_data(as_text=True)
    assert "jane@example.com" not in page
    assert "reply from" not in page
    assert 'suppression_consent_changes_total{action="opted_out",source="other"}' in page
    assert 'suppression_consent_changes_total{action="complaint",source="other"}' in page
    # A source the service knows (a staff channel) keeps its own series.
    assert 'suppression_consent_changes_total{action="opted_out",source="phone"}' in page


@pytest.fixture
def guarded(app_on_same_database, settings):
    return app_on_same_database(replace(settings, metrics_token=METRICS_TOKEN)).test_client()


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", f"Bearer {METRICS_TOKEN}x", f"Bearer {METRICS_TOKEN[:-1]}", METRICS_TOKEN],
)
def test_with_a_metrics_token_metrics_needs_it(guarded, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    response = guarded.get("/metrics", headers=headers)
    assert response.status_code == 401
    body = response.get_json()
    assert body["code"] == 401
    assert body["status"] == "Unauthorized"
    assert "METRICS_TOKEN" in body["message"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"suppression_http_requests_total" not in response.data


def test_an_api_key_does_not_open_guarded_metrics(guarded, admin):
    assert guarded.get("/metrics", headers=admin).status_code == 401


def test_with_a_metrics_token_metrics_answers_the_token(guarded):
    response = guarded.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert b"suppression_http_requests_total" in response.data
    # The health checks stay open: a load balancer carries no token.
    assert guarded.get("/healthz").status_code == 200
