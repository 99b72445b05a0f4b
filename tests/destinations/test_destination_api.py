"""GET /v1/destinations and POST /v1/destinations/<name>/sync (admin)."""

import pytest
from seeding import api_key

NAMES = ["keap", "meta", "google", "linkedin", "microsoft"]


def test_destinations_list_every_destination_with_its_queue_and_health(
    client, admin, worker, record, fakes, clock
):
    record("jane@example.com")
    fakes.meta.start_outage(status=503)
    worker.run_pass()
    response = client.get("/v1/destinations", headers=admin)
    assert response.status_code == 200
    listing = {item["name"]: item for item in response.get_json()}
    assert list(listing) == NAMES
    meta = listing["meta"]
    assert meta["kind"] == "meta_custom_audience"
    assert meta["enabled"] is True
    assert meta["pending"] == 1
    assert meta["failed"] == 0
    assert meta["last_success_at"] is None
    assert "HTTP 503" in meta["last_error"]
    keap = listing["keap"]
    assert keap["pending"] == 0
    assert keap["last_success_at"] == "2026-11-29T12:00:00Z"
    assert keap["last_error"] is None


@pytest.mark.parametrize("role", ["sender", "staff"])
def test_destinations_are_for_admins_only(client, make_key, role):
    headers = make_key(role)
    assert client.get("/v1/destinations", headers=headers).status_code == 403
    assert client.post("/v1/destinations/meta/sync", headers=headers).status_code == 403
    assert client.get("/v1/destinations").status_code == 401


def test_sync_now_runs_one_pass_and_answers_what_was_pushed(client, admin, worker, record, fakes):
    record("jane@example.com", purpose="ad_audiences")
    response = client.post("/v1/destinations/meta/sync", headers=admin)
    assert response.status_code == 200
    body = response.get_json()
    assert body["destination"] == "meta"
    assert body["claimed"] == 1
    assert body["suppressed"] == 1
    assert body["error"] is None
    assert len(fakes.meta.requests) == 1
    assert fakes.google.requests == []  # only the destination asked for


def test_sync_now_with_full_reconciles_first(client, admin, record, fakes):
    record("jane@example.com", purpose="ad_audiences")  # before any registration
    response = client.post("/v1/destinations/linkedin/sync?full=true", headers=admin)
    assert response.status_code == 200
    assert response.get_json()["reconciled"] == 1
    assert response.get_json()["suppressed"] == 1


def test_sync_now_names_an_unknown_destination_in_the_error(client, admin):
    response = client.post("/v1/destinations/myspace/sync", headers=admin)
    assert response.status_code == 404
    body = response.get_json()
    assert body["code"] == 404
    assert "myspace" in body["message"]
    assert "name" in body["errors"]


def test_sync_now_refuses_a_destination_that_is_not_enabled(
    make_settings, engine, clock, destination_env
):
    from dataclasses import replace

    from suppression import create_app
    from suppression.connectors.settings import destinations_from_env

    settings = replace(
        make_settings(),
        destinations=destinations_from_env({**destination_env, "GOOGLE_ENABLED": "false"}),
    )
    app = create_app(settings, clock=clock)
    admin = api_key(app, "admin", "admin-2")
    try:
        response = app.test_client().post("/v1/destinations/google/sync", headers=admin)
        listing = app.test_client().get("/v1/destinations", headers=admin)
    finally:
        app.extensions["suppression"].engine.dispose()
    assert response.status_code == 409
    assert "not enabled" in response.get_json()["message"]
    assert {i["name"]: i["enabled"] for i in listing.get_json()}["google"] is False


def test_the_deadline_alarm_counts_suppressions_waiting_too_long(
    client, admin, worker, record, fakes, clock
):
    fakes.microsoft.start_outage(status=503)
    record("jane@example.com", purpose="ad_audiences")
    worker.run_pass(["microsoft"])
    clock.advance(hours=23)
    listing = {i["name"]: i for i in client.get("/v1/destinations", headers=admin).get_json()}
    assert listing["microsoft"]["overdue"] == 0
    clock.advance(hours=2)
    listing = {i["name"]: i for i in client.get("/v1/destinations", headers=admin).get_json()}
    assert listing["microsoft"]["overdue"] == 1
    assert listing["microsoft"]["oldest_pending_at"] == "2026-11-29T12:00:00Z"


def test_the_openapi_document_describes_the_destination_endpoints(client):
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "get" in paths["/v1/destinations"]
    assert "post" in paths["/v1/destinations/{name}/sync"]


class TestABigBacklog:
    @pytest.fixture
    def destination_env(self, fakes):
        return {**fakes.environment(), "META_BATCH_SIZE": "2"}

    def test_sync_now_drains_a_bounded_number_of_batches_and_says_what_is_left(
        self, client, admin, worker, record, fakes, monkeypatch
    ):
        from suppression.api import destinations as endpoint

        monkeypatch.setattr(endpoint, "MAX_BATCHES", 1)
        for n in range(5):
            record(f"person{n}@example.com", purpose="ad_audiences")
        body = client.post("/v1/destinations/meta/sync", headers=admin).get_json()
        assert body["suppressed"] == 2
        assert body["pending"] == 3
        assert fakes.meta.batch_sizes == [2]

    def test_sync_now_with_full_pushes_a_bounded_number_of_reconcile_chunks(
        self, client, admin, record, fakes, monkeypatch
    ):
        from suppression.api import destinations as endpoint

        monkeypatch.setattr(endpoint, "MAX_BATCHES", 1)
        for n in range(5):  # no destination registered yet: only a reconcile finds them
            record(f"person{n}@example.com", purpose="ad_audiences")
        body = client.post("/v1/destinations/meta/sync?full=true", headers=admin).get_json()
        assert body["reconciled"] == 5
        # One chunk pushed by the reconcile, one batch by the drain, the rest queued.
        assert fakes.meta.batch_sizes == [2, 2]
        assert (body["suppressed"], body["pending"]) == (4, 1)
