import pytest


def test_healthz_answers_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


@pytest.mark.committed  # /readyz: a connection of its own
def test_readyz_answers_ok_when_the_database_answers(client):
    assert client.get("/readyz").status_code == 200


def test_readyz_answers_503_when_the_database_is_gone(app, client, monkeypatch):
    from sqlalchemy import create_engine

    broken = create_engine("sqlite:////nonexistent-dir/none.db")
    monkeypatch.setattr(app.extensions["suppression"], "engine", broken)
    assert client.get("/readyz").status_code == 503


def test_openapi_document_describes_every_endpoint(client):
    document = client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.")
    for path in ("/v1/consents", "/v1/blocks", "/v1/checks", "/v1/checks.csv", "/healthz"):
        assert path in document["paths"], path
    assert "bearerAuth" in document["components"]["securitySchemes"]


def test_docs_page_is_served_with_local_assets(client):
    page = client.get("/docs")
    assert page.status_code == 200
    assert b"/docs/assets/swagger-ui-bundle.js" in page.data
    asset = client.get("/docs/assets/swagger-ui-bundle.js")
    assert asset.status_code == 200
    asset.close()


def test_metrics_are_prometheus_text(client):
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert b"suppression_http_requests_total" in response.data
