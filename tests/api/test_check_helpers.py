"""Large check lists decided by helper processes answer exactly as the web worker
would itself (suppression/worker/check_helpers.py), JSON and CSV, and survive a helper
that fails."""

import hashlib
from concurrent.futures import Future
from dataclasses import replace

import pytest
from seeding import api_key, block, record
from sqlalchemy import create_engine

from suppression.app import current
from suppression.store.raw_connections import Connect
from suppression.worker.check_helpers import HelperPool

# Helper processes read the database on connections of their own.
pytestmark = pytest.mark.committed


def sha(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def with_helpers(settings, processes=2, parallel_min=5, chunk_size=11):
    return replace(
        settings,
        check_processes=processes,
        check_parallel_min=parallel_min,
        check_chunk_size=chunk_size,
    )


def seed(client, headers, admin_headers):
    """A store with every kind of answer, and the list that asks for them."""
    record(client, headers, "out@example.com")
    record(client, headers, "all-out@example.com", purpose="all")
    record(client, headers, "in@example.com", status="opted_in")
    record(client, headers, "declared@example.com", status="opted_in", country="CA")
    block(client, headers, "bounce@example.com", "hard_bounce")
    block(client, headers, "complaint@example.com", "complaint")
    upload = client.post(
        "/v1/imports",
        data=f"email_sha256\n{sha('hashed@example.com')}\n",
        content_type="text/csv",
        headers=admin_headers,
    )
    assert upload.status_code in (200, 201, 202), upload.get_json()
    kinds = [
        " Out@Example.com",
        "all-out@example.com",
        "in@example.com",
        "declared@example.com",
        {"email": "in@example.com", "country": "de"},
        "bounce@example.com",
        "complaint@example.com",
        "hashed@example.com",
        "hans@firma.de",
        "bob@example.com",
        {"email": "li@example.com", "country": "CA"},
        "not an address",
        "",
        "a@@example.com",
        "jörg@bücher.example",
    ]
    return [kinds[i % len(kinds)] for i in range(150)]


def answers(client, headers, addresses):
    response = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "email_marketing", "addresses": addresses},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def csv_answers(client, headers, addresses):
    lines = ["email,country"]
    for entry in addresses:
        if isinstance(entry, dict):
            lines.append(f"{entry['email']},{entry['country']}")
        elif isinstance(entry, str):
            lines.append(f'"{entry}",')
    response = client.post(
        "/v1/checks.csv",
        data="\n".join(lines) + "\n",
        content_type="text/csv",
        headers=headers,
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_data(as_text=True)


def test_helpers_answer_exactly_as_the_worker_does(make_settings, sender_for, caplog):
    client, headers = sender_for(with_helpers(make_settings(), processes=0))
    addresses = seed(client, headers, api_key(client.application, "admin"))
    alone = answers(client, headers, addresses)
    alone_csv = csv_answers(client, headers, addresses)

    # Same store (sender_for empties the tables, so seed again), now with helpers.
    helped_client, helped_headers = sender_for(with_helpers(make_settings(), processes=2))
    seed(helped_client, helped_headers, api_key(helped_client.application, "admin"))
    pool = current.of(helped_client.application).helpers
    calls = []
    submit = pool.submit

    def counted(job):
        calls.append(len(job.raws))
        return submit(job)

    pool.submit = counted
    try:
        helped = answers(helped_client, helped_headers, addresses)
        helped_csv = csv_answers(helped_client, helped_headers, addresses)
    finally:
        del pool.submit
    assert calls, "the helpers were not used"
    assert "decided in process" not in caplog.text  # no slice fell back
    assert helped == alone
    assert helped_csv == alone_csv
    reasons = {r["reason"] for r in helped["results"]}
    assert {"opted_out", "bounced", "complained", "eea", "opt_in_required", "invalid"} <= reasons
    hashed = [r for r in helped["results"] if r["email"] == "hashed@example.com"]
    assert hashed
    assert all(r["reason"] == "opted_out" for r in hashed)


def test_a_failing_helper_costs_only_speed(make_settings, sender_for, monkeypatch):
    client, headers = sender_for(with_helpers(make_settings(), processes=2))
    record(client, headers, "out@example.com")
    addresses = ["out@example.com", "bob@example.com", "hans@firma.de"] * 20

    def broken(self, job):
        future: Future = Future()
        future.set_exception(OSError("helper gone"))
        return future

    monkeypatch.setattr(HelperPool, "submit", broken)
    body = answers(client, headers, addresses)
    assert [r["reason"] for r in body["results"]] == ["opted_out", None, "eea"] * 20


def test_helpers_are_only_for_databases_another_process_can_open(tmp_path):
    assert Connect.from_engine(create_engine("sqlite://")) is None
    assert Connect.from_engine(create_engine("sqlite:///:memory:")) is None
    on_disk = Connect.from_engine(create_engine(f"sqlite:///{tmp_path / 'x.db'}"))
    assert on_disk is not None
    assert on_disk.dialect == "sqlite"
    pg = Connect.from_engine(create_engine("postgresql+psycopg://u:p@127.0.0.1:5432/db"))
    assert pg is not None
    assert dict(pg.kwargs) == {
        "host": "127.0.0.1",
        "dbname": "db",
        "user": "u",
        "password": "p",
        "port": 5432,
    }


def test_helpers_are_one_per_cpu_on_either_database_at_most_four_and_can_be_off(
    tmp_path, monkeypatch
):
    from suppression.config.settings import Settings

    environ = {"SUPPRESSION_INSTANCE": str(tmp_path / "inst")}
    postgresql = {**environ, "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/test"}
    for cpus, helpers in ((1, 1), (2, 2), (64, 4), (None, 1)):
        monkeypatch.setattr("os.cpu_count", lambda cpus=cpus: cpus)
        assert Settings.from_env(environ).check_processes == helpers
        assert Settings.from_env(postgresql).check_processes == helpers
    assert Settings.from_env({**environ, "CHECK_PROCESSES": "0"}).check_processes == 0
