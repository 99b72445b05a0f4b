"""Retention with a clock we control: 2 years for non-customers, 7 for everyone."""

import hashlib

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from suppression.cli.main import main
from suppression.services.consents.audit import verify_chain
from suppression.services.rights import retention
from suppression.services.rights.retention import purge, retention_rules
from suppression.store.models import HashedSuppression, PurgeRun, Subject

RULES = retention_rules(730, 2557)


@pytest.fixture
def people(client, sender):
    def consent(email, status, when, **extra):
        response = client.post(
            "/v1/consents",
            json={
                "email": email,
                "purpose": "all",
                "status": status,
                "source": "form",
                "occurred_at": when,
                **extra,
            },
            headers=sender,
        )
        assert response.status_code == 201

    consent("lapsed@example.com", "opted_in", "2023-06-01T00:00:00Z")  # non-customer, 3.5 y
    consent("recent@example.com", "opted_in", "2025-06-01T00:00:00Z")  # non-customer, 1.5 y
    consent("quit@example.com", "opted_out", "2023-06-01T00:00:00Z")  # opted out 3.5 y ago
    consent("buyer@example.com", "opted_in", "2022-01-01T00:00:00Z")  # customer, 4.9 y
    client.post(
        "/v1/relationships",
        json={
            "email": "buyer@example.com",
            "kind": "purchase",
            "occurred_at": "2022-01-01T00:00:00Z",
        },
        headers=sender,
    )
    consent("ancient@example.com", "opted_in", "2019-01-01T00:00:00Z")  # customer, 7.9 y
    client.post(
        "/v1/relationships",
        json={
            "email": "ancient@example.com",
            "kind": "purchase",
            "occurred_at": "2019-01-01T00:00:00Z",
        },
        headers=sender,
    )


def purged(session, vault, now, dry_run=False):
    """Run the purge as the command does: commit each chunk; the finished runs."""
    runs = []
    for step in purge(session, vault, RULES, now, dry_run):
        session.commit()
        if step.finished:
            runs.append(step.run)
    return runs


def reasons(client, sender):
    addresses = [
        "lapsed@example.com",
        "recent@example.com",
        "quit@example.com",
        "buyer@example.com",
        "ancient@example.com",
    ]
    response = client.post("/v1/checks?detail=all", json={"addresses": addresses}, headers=sender)
    return [r["reason"] for r in response.get_json()["results"]]


def test_a_dry_run_counts_and_records_but_changes_nothing(
    people, client, sender, session, vault, clock
):
    before = reasons(client, sender)
    runs = purged(session, vault, clock(), dry_run=True)
    assert [(r.rule, r.dry_run, r.counts) for r in runs] == [
        ("non_customer_2y", True, {"due": 2, "erased": 0}),
        ("everyone_7y", True, {"due": 1, "erased": 0}),
    ]
    assert reasons(client, sender) == before == [None, None, "opted_out", None, None]


def test_purge_erases_whoever_is_past_a_period(people, client, sender, session, vault, clock):
    runs = purged(session, vault, clock())
    assert [r.counts["erased"] for r in runs] == [2, 1]
    assert reasons(client, sender) == ["erased", None, "erased", None, "erased"]
    erased = session.scalars(select(Subject).where(Subject.erased_at.is_not(None))).all()
    assert {s.erase_reason for s in erased} == {"retention"}
    assert all(s.email_sealed is None for s in erased)
    assert verify_chain(session, vault).intact
    assert session.scalar(select(PurgeRun.rule).where(PurgeRun.dry_run.is_(False)).limit(1))


def test_a_later_run_finds_the_rest_when_their_time_comes(
    people, client, sender, session, vault, clock
):
    purged(session, vault, clock())
    clock.advance(days=365)
    runs = purged(session, vault, clock())
    assert [r.counts["erased"] for r in runs] == [1, 0]  # recent@ is now 2.5 years quiet
    assert reasons(client, sender)[1] == "erased"


@pytest.mark.committed  # a command: its own engine
def test_retention_command_dry_run_says_what_it_would_do(
    people, database_url, monkeypatch, tmp_path
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("SUPPRESSION_INSTANCE", str(tmp_path))
    result = CliRunner().invoke(main, ["retention", "purge", "--dry-run"])
    assert result.exit_code == 0, result.output
    # The command runs on the real clock (2026-11-29 or later): at least these are due.
    assert "non_customer_2y: would erase" in result.output
    assert "everyone_7y: would erase" in result.output


def test_purge_removes_an_imported_hash_of_an_address_it_erases(
    people, client, admin, sender, session, vault, clock
):
    hashes = [hashlib.sha256(a.encode()).hexdigest() for a in ("lapsed@example.com", "x@y.org")]
    body = "email_sha256\n" + "".join(f"{h}\n" for h in hashes)
    client.post("/v1/imports", data=body.encode(), content_type="text/csv", headers=admin)
    purged(session, vault, clock())
    kept = session.scalars(select(HashedSuppression.email_sha256)).all()
    assert [h.hex() for h in kept] == hashes[1:]
    assert reasons(client, sender)[0] == "erased"


def test_a_killed_purge_keeps_every_chunk_committed_before_it(
    people, client, sender, session, vault, clock, monkeypatch
):
    monkeypatch.setattr(retention, "BATCH", 1)
    steps = purge(session, vault, RULES, clock(), dry_run=False)
    first = next(steps)
    session.commit()
    assert (first.erased, first.finished) == (1, False)
    next(steps)  # the second chunk is flushed, not committed: the kill loses it
    steps.close()
    session.rollback()
    erased = session.scalars(select(Subject).where(Subject.erased_at.is_not(None))).all()
    assert len(erased) == 1
    assert reasons(client, sender).count("erased") == 1
