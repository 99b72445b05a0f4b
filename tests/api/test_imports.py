"""Imports of suppression lists (plain and hashed), and the hashed export."""

import hashlib
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from suppression.domain.jurisdictions import CountrySource
from suppression.services.consents.audit import verify_chain
from suppression.services.consents.evidence import open_evidence
from suppression.services.imports import importer as imports
from suppression.store.models import (
    ConsentEvent,
    ConsentState,
    HashedSuppression,
    ImportRun,
    Subject,
)


def upload(client, headers, body):
    return client.post("/v1/imports", data=body.encode(), content_type="text/csv", headers=headers)


def reasons(client, sender, addresses):
    response = client.post("/v1/checks?detail=all", json={"addresses": addresses}, headers=sender)
    return [r["reason"] for r in response.get_json()["results"]]


def sha(address):
    return hashlib.sha256(address.encode()).hexdigest()


def test_mixed_good_and_bad_rows_import_the_good_and_name_the_bad(client, admin, sender, session):
    body = (
        "email,status,purpose,country,occurred_at,source\n"
        "one@example.com,,,,,\n"
        "not-an-address,opted_out,,,,\n"
        "two@example.com,opted_out,email_marketing,US,2026-01-02T03:04:05Z,old_esp\n"
        "three@example.com,maybe,,,,\n"
        "four@example.com,opted_out,sms,,,\n"
        "five@example.com,opted_out,,XX,,\n"
        "six@example.com,opted_out,,,yesterday,\n"
        "seven@example.com,opted_out,,,2030-01-01T00:00:00Z,\n"
    )
    response = upload(client, admin, body)
    assert response.status_code == 200
    result = response.get_json()
    assert result["rows"] == 8
    assert result["imported"] == 2
    assert [r["line"] for r in result["rejected"]] == [3, 5, 6, 7, 8, 9]
    assert "not a valid email address" in result["rejected"][0]["error"]
    assert reasons(client, sender, ["one@example.com", "two@example.com", "four@example.com"]) == [
        "opted_out",
        "opted_out",
        None,
    ]
    run = session.scalars(select(ImportRun)).one()
    assert (run.rows, run.imported, run.rejected) == (8, 2, 6)
    assert run.finished_at is not None


def test_a_file_of_many_bad_rows_lists_the_first_100_by_line_and_counts_all(
    client, admin, session, monkeypatch
):
    monkeypatch.setattr(imports, "CHUNK", 7)  # the first 100 gathered across chunks
    lines = ["email,status"]
    for i in range(600):
        lines.append(f"u{i}@example.com,opted_out" if i % 50 == 0 else f"bad{i},maybe")
    response = upload(client, admin, "\n".join(lines) + "\n")
    assert response.status_code == 200
    result = response.get_json()
    assert (result["rows"], result["imported"], result["rejected_total"]) == (600, 12, 588)
    expected = [i + 2 for i in range(600) if i % 50][:100]
    assert [r["line"] for r in result["rejected"]] == expected
    run = session.scalars(select(ImportRun)).one()
    assert (run.rows, run.imported, run.rejected) == (600, 12, 588)


def test_imported_events_carry_their_evidence_and_chain(client, admin, session, vault):
    upload(client, admin, "email,occurred_at,source\na@example.com,2025-05-05T00:00:00Z,esp\n")
    event = session.scalars(select(ConsentEvent)).one()
    assert (event.action, event.purpose, event.source) == ("opted_out", "all", "esp")
    assert event.actor == "api_key:admin-key"
    assert open_evidence(vault, event.evidence_sealed).value["line"] == 2
    assert verify_chain(session, vault).intact


def test_hashed_rows_suppress_any_matching_address(client, admin, sender, session):
    body = f"email_sha256\n{sha('hidden@example.com')}\n{sha('x').upper()}\nnothex\n"
    result = upload(client, admin, body).get_json()
    assert result["imported"] == 2
    assert result["rejected"] == [
        {"line": 4, "error": "email_sha256 must be 64 hexadecimal characters"}
    ]
    assert session.scalar(select(func.count()).select_from(HashedSuppression)) == 2
    assert reasons(client, sender, [" Hidden@Example.com", "visible@example.com"]) == [
        "opted_out",
        None,
    ]


def test_an_import_never_resubscribes(client, admin, sender):
    client.post(
        "/v1/consents",
        json={
            "email": "out@example.com",
            "purpose": "all",
            "status": "opted_out",
            "source": "link",
        },
        headers=sender,
    )
    client.post(
        "/v1/blocks", json={"email": "angry@example.com", "kind": "complaint"}, headers=sender
    )
    upload(client, admin, f"email_sha256\n{sha('hashed@example.com')}\n")
    body = (
        "email,status\nout@example.com,opted_in\nangry@example.com,opted_in\n"
        "hashed@example.com,opted_in\nnew@example.com,opted_in\n"
    )
    result = upload(client, admin, body).get_json()
    assert result["imported"] == 1
    assert [r["line"] for r in result["rejected"]] == [2, 3, 4]
    assert all(r["error"].startswith("refused") for r in result["rejected"])
    assert reasons(client, sender, ["out@example.com", "angry@example.com"]) == [
        "opted_out",
        "complained",
    ]


def test_a_list_longer_than_a_chunk_keeps_lines_guard_and_chain(
    client, admin, sender, session, monkeypatch, vault
):
    monkeypatch.setattr(imports, "CHUNK", 2)
    body = (
        "email,status,occurred_at\n"
        "a@example.com,opted_out,2025-01-01T00:00:00Z\n"
        "bad,,\n"
        "b@example.com,opted_in,2025-01-01T00:00:00Z\n"
        "\n"
        "c@example.com,maybe,\n"
        "a@example.com,opted_in,2025-02-01T00:00:00Z\n"
        "d@example.com,,\n"
    )
    result = upload(client, admin, body).get_json()
    assert (result["rows"], result["imported"]) == (6, 3)
    assert [r["line"] for r in result["rejected"]] == [3, 6, 7]
    assert result["rejected"][2]["error"].startswith("refused: the address opted out")
    assert reasons(client, sender, ["a@example.com", "b@example.com", "d@example.com"]) == [
        "opted_out",
        None,
        "opted_out",
    ]
    lines = sorted(
        open_evidence(vault, e.evidence_sealed).value["line"]
        for e in session.scalars(select(ConsentEvent))
    )
    assert lines == [2, 4, 8]
    assert verify_chain(session, vault).intact
    assert not [t for t in threading.enumerate() if t.name == "import-reader"]


def test_a_list_unreadable_after_some_chunks_is_refused_and_the_reader_stops(
    client, admin, session, monkeypatch, vault
):
    monkeypatch.setattr(imports, "CHUNK", 2)
    body = b"email\na@example.com\nb@example.com\nc@example.com\n\xff@example.com\n"
    response = client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    assert response.status_code == 400
    assert "not UTF-8" in response.get_json()["message"]
    assert verify_chain(session, vault).intact
    assert not [t for t in threading.enumerate() if t.name == "import-reader"]


def test_imported_country_hints_and_states_for_new_and_known_subjects(
    client, admin, sender, session, vault
):
    known = {"email": "known@example.com", "purpose": "all", "status": "opted_out", "source": "x"}
    assert client.post("/v1/consents", json=known, headers=sender).status_code == 201
    body = (
        "email,status,purpose,country,occurred_at\n"
        "new@example.com,opted_out,,US,2025-01-01T00:00:00Z\n"
        "new@example.com,opted_out,,DE,2025-03-01T00:00:00Z\n"
        "new@example.com,opted_out,,FR,2025-02-01T00:00:00Z\n"
        "mixed@example.com,opted_out,,US,2025-01-01T00:00:00Z\n"
        "mixed@example.com,opted_in,email_marketing,CA,2025-04-01T00:00:00Z\n"
        "known@example.com,opted_out,email_marketing,GB,2025-01-01T00:00:00Z\n"
        "plain@example.com,opted_out,,,2025-01-01T00:00:00Z\n"
    )
    assert upload(client, admin, body).get_json()["imported"] == 7

    def subject(address):
        return session.scalars(select(Subject).where(Subject.email_index == vault.index(address)))

    found = {a: subject(f"{a}@example.com").one() for a in ("new", "mixed", "known", "plain")}
    assert {a: s.country for a, s in found.items()} == {
        "new": "DE",
        "mixed": "CA",
        "known": "GB",
        "plain": None,
    }
    assert found["new"].country_source == int(CountrySource.HINT)
    assert found["new"].country_changed_at == datetime(2025, 3, 1, tzinfo=UTC)
    states = {(s.subject_id, s.purpose): s.status for s in session.scalars(select(ConsentState))}
    ids = {a: s.id for a, s in found.items()}
    assert states == {
        (ids["new"], "all"): "opted_out",
        (ids["mixed"], "all"): "opted_out",
        (ids["mixed"], "email_marketing"): "opted_in",
        (ids["known"], "all"): "opted_out",
        (ids["known"], "email_marketing"): "opted_out",
        (ids["plain"], "all"): "opted_out",
    }


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_an_import_never_opts_an_erased_address_back_in(client, admin, sender):
    erase = {"email": "gone@example.com", "reason": "request"}
    assert client.post("/v1/subjects/erase", json=erase, headers=admin).status_code < 300
    body = "email,status\ngone@example.com,opted_in\ngone@example.com,opted_out\n"
    result = upload(client, admin, body).get_json()
    assert result["imported"] == 1
    assert result["rejected"] == [
        {"line": 2, "error": "refused: the address was erased; an import cannot opt it back in"}
    ]
    assert reasons(client, sender, ["gone@example.com"]) == ["erased"]


def test_import_without_an_email_column_is_422(client, admin):
    response = upload(client, admin, "address\nx@example.com\n")
    assert response.status_code == 422


def test_import_is_admin_only(client, sender):
    assert upload(client, sender, "email\na@example.com\n").status_code == 403


def test_hashed_export_lists_suppressions_with_reason(client, admin, sender):
    client.post(
        "/v1/consents",
        json={
            "email": "Out@Example.com",
            "purpose": "email_marketing",
            "status": "opted_out",
            "source": "link",
        },
        headers=sender,
    )
    client.post(
        "/v1/blocks", json={"email": "bounce@example.com", "kind": "hard_bounce"}, headers=sender
    )
    client.post(
        "/v1/consents",
        json={
            "email": "in@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "form",
        },
        headers=sender,
    )
    upload(client, admin, f"email_sha256\n{sha('imported@example.com')}\n")
    response = client.get("/v1/suppressions.csv", headers=admin)
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    lines = response.get_data(as_text=True).splitlines()
    assert lines[0] == "email_sha256,reason,changed_at"
    rows = {line.split(",")[0]: line.split(",")[1] for line in lines[1:]}
    assert rows == {
        sha("out@example.com"): "opted_out",
        sha("bounce@example.com"): "bounced",
        sha("imported@example.com"): "opted_out",
    }
    assert "@" not in response.get_data(as_text=True)
    response.close()  # a streamed answer holds its read transaction until closed


@pytest.mark.committed  # a command: its own engine
def test_import_command_reads_a_file_and_reports_lines(
    client, sender, database_url, monkeypatch, tmp_path
):
    from click.testing import CliRunner

    from suppression.cli.main import main

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path))
    monkeypatch.setenv("ADDRESS_INDEX_KEY", "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk")
    monkeypatch.setenv("ADDRESS_SEALING_KEYS", "1:c3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3M")
    monkeypatch.setenv("SECRET_KEY", "x" * 40)
    path = tmp_path / "old-esp.csv"
    path.write_text("email\nold1@example.com\nbroken\nold2@example.com\n")
    result = CliRunner().invoke(main, ["import", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 imported, 1 rejected of 3 rows" in result.output
    assert "line 3: not a valid email address" in result.output
    assert reasons(client, sender, ["old1@example.com", "old2@example.com"]) == [
        "opted_out",
        "opted_out",
    ]


def test_a_staff_opt_in_turns_a_hashed_entry_into_an_ordinary_opt_out_first(
    client, admin, staff, sender, session
):
    upload(
        client, admin, f"email_sha256,occurred_at\n{sha('back@example.com')},2025-01-01T00:00:00Z\n"
    )
    refused = client.post(
        "/v1/consents",
        json={
            "email": "back@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "crm",
        },
        headers=sender,
    )
    assert refused.status_code == 409
    response = client.post(
        "/v1/consents",
        json={
            "email": "back@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "phone",
            "evidence": {"ticket": "HD-8"},
        },
        headers=staff,
    )
    assert response.status_code == 201
    assert session.scalar(select(func.count()).select_from(HashedSuppression)) == 0
    assert reasons(client, sender, ["back@example.com"]) == [None]
    ads = client.post(
        "/v1/checks?detail=all",
        json={"purpose": "ad_audiences", "addresses": ["back@example.com"]},
        headers=sender,
    ).get_json()["results"][0]["reason"]
    assert ads == "opted_out"
