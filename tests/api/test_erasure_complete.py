"""Erasure stays complete: whatever is written about an erased person afterwards
keeps only the suppression facts (action, purpose, time, actor), a second erase
still scrubs, and an imported unkeyed hash of the address goes with the erasure."""

import hashlib

import pytest
from sqlalchemy import func, select, text

from suppression.services.consents.audit import verify_chain
from suppression.store.models import ConsentEvent, HashedSuppression, Subject

# Every test erases: the erasure checkpoints the WAL on a connection of its own.
pytestmark = pytest.mark.committed

JANE = "jane.doe@example.com"
# What an attacker (or a careless sender) sends along after the erasure.
AGENT = "LeakyAgent/7.1"
EVIDENCE = {"reply": f"From: Jane <{JANE}> please stop", "form": "bounce-parser"}
NEEDLES = (JANE.encode(), AGENT.lower().encode(), b"please stop", b"bounce-parser")


@pytest.fixture
def erased(client, sender, admin):
    body = {
        "email": JANE,
        "purpose": "all",
        "status": "opted_in",
        "source": "signup",
        "country": "US",
        "evidence": {"form": "footer"},
    }
    assert client.post("/v1/consents", json=body, headers=sender).status_code == 201
    response = client.post(
        "/v1/subjects/erase", json={"email": JANE, "reason": "request"}, headers=admin
    )
    assert response.json["status"] == "done"
    return response.json


def personal(event: ConsentEvent) -> tuple:
    return (
        event.ip,
        event.user_agent,
        event.evidence_sealed,
        event.country,
        event.campaign,
        event.notice_version,
    )


def events_after_erasure(session) -> list[tuple]:
    """(action, source, actor, personal fields, salt) of each event written after
    the (last) erasure. Each read ends its transaction: SQLite's write lock."""
    erased_seq = session.scalar(
        select(func.max(ConsentEvent.chain_seq)).where(ConsentEvent.action == "erased")
    )
    events = [
        (event.action, event.source, event.actor, personal(event), event.personal_salt)
        for event in session.scalars(
            select(ConsentEvent)
            .where(ConsentEvent.chain_seq > erased_seq)
            .order_by(ConsentEvent.chain_seq)
        )
    ]
    session.rollback()
    return events


def subject_fields(session) -> tuple:
    subject = session.scalars(select(Subject)).one()
    fields = (
        subject.email_sealed,
        subject.country,
        subject.country_source,
        subject.country_changed_at,
        subject.last_purchase_at,
        subject.last_inquiry_at,
    )
    session.rollback()
    return fields


def check(client, sender, email=JANE):
    response = client.post("/v1/checks?detail=all", json={"addresses": [email]}, headers=sender)
    return response.json["results"][0]["reason"]


def assert_nothing_personal(session, vault, dump, actions):
    events = events_after_erasure(session)
    assert [action for action, *_rest in events] == actions
    for action, _source, actor, fields, salt in events:
        assert fields == (None,) * 6, action
        assert salt is None  # nothing personal to digest, as on an erased event
        assert actor == "api_key:sender-key"
    assert subject_fields(session) == (None,) * 6
    assert verify_chain(session, vault).intact
    session.rollback()
    data = dump().lower()
    for needle in NEEDLES:
        assert needle not in data, needle


def test_a_bounce_after_erasure_stores_no_personal_field(
    erased, client, sender, session, dump, vault
):
    body = {"email": JANE, "kind": "hard_bounce", "country": "DE", "evidence": EVIDENCE}
    response = client.post("/v1/blocks", json=body, headers={**sender, "User-Agent": AGENT})
    assert response.status_code == 201
    assert_nothing_personal(session, vault, dump, ["hard_bounce"])
    assert check(client, sender) == "erased"


def test_a_batch_of_blocks_after_erasure_stores_no_personal_field(
    erased, client, sender, session, dump, vault
):
    events = [
        {"email": JANE, "kind": "complaint", "country": "FR", "evidence": EVIDENCE},
        {"email": JANE, "kind": "objection", "source": "reply", "evidence": EVIDENCE},
    ]
    response = client.post(
        "/v1/blocks", json={"events": events}, headers={**sender, "User-Agent": AGENT}
    )
    assert response.json == {"recorded": 2}
    assert_nothing_personal(session, vault, dump, ["complaint", "objection"])


def test_a_purchase_after_erasure_stores_no_time_or_personal_field(
    erased, client, sender, session, dump, vault
):
    body = {"email": JANE, "kind": "purchase", "evidence": EVIDENCE, "campaign": "black-friday"}
    response = client.post("/v1/relationships", json=body, headers={**sender, "User-Agent": AGENT})
    assert response.status_code == 201
    assert_nothing_personal(session, vault, dump, ["purchase"])


def test_a_consent_write_after_erasure_stores_no_personal_field(
    erased, client, sender, session, dump, vault
):
    body = {
        "email": JANE,
        "purpose": "email_marketing",
        "status": "opted_out",
        "source": "email_request",
        "country": "GB",
        "country_source": "declared",
        "evidence": EVIDENCE,
        "campaign": "winter",
        "notice_version": "privacy-v9",
    }
    response = client.post("/v1/consents", json=body, headers={**sender, "User-Agent": AGENT})
    assert response.status_code == 201
    assert_nothing_personal(session, vault, dump, ["opted_out"])
    assert check(client, sender) == "erased"


def test_an_import_after_erasure_stores_no_personal_field(
    erased, client, admin, session, dump, vault
):
    body = f"email,status,country,source\n{JANE},opted_out,CA,old_esp\n".encode()
    response = client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    assert response.json["imported"] == 1
    [(action, source, actor, fields, _salt)] = events_after_erasure(session)
    assert (action, source, actor) == ("opted_out", "old_esp", "api_key:admin-key")
    assert fields == (None,) * 6  # not even the import's line
    assert subject_fields(session) == (None,) * 6
    assert verify_chain(session, vault).intact
    session.rollback()


def test_a_second_erase_answers_as_before_and_scrubs_again(erased, client, admin, session, engine):
    # Personal data that got in behind the service's back (an old version, a
    # restored backup) goes with the next erase.
    with engine.begin() as connection:
        connection.execute(text("UPDATE consent_events SET ip = '198.51.100.4'"))
        connection.execute(text("UPDATE subjects SET country = 'US', last_purchase_at = erased_at"))
    second = client.post(
        "/v1/subjects/erase", json={"email": JANE, "reason": "request"}, headers=admin
    )
    assert second.status_code == 200
    assert second.json == erased
    assert session.scalars(select(ConsentEvent.ip).where(ConsentEvent.ip.is_not(None))).all() == []
    actions = session.scalars(select(ConsentEvent.action).order_by(ConsentEvent.chain_seq)).all()
    assert actions == ["opted_in", "erased"]  # the repeat adds no event
    assert subject_fields(session) == (None,) * 6


def test_erasing_again_after_a_staff_restore_erases_again(
    erased, client, admin, staff, sender, session
):
    restore = {
        "email": JANE,
        "purpose": "all",
        "status": "opted_in",
        "source": "phone",
        "country": "US",
        "evidence": {"ticket": "HD-5"},
    }
    assert client.post("/v1/consents", json=restore, headers=staff).status_code == 201
    assert check(client, sender) is None
    again = client.post(
        "/v1/subjects/erase", json={"email": JANE, "reason": "request"}, headers=admin
    )
    assert again.json["status"] == "done"
    assert check(client, sender) == "erased"
    for event in session.scalars(select(ConsentEvent)):
        assert personal(event)[:4] == (None,) * 4, event.action
    assert subject_fields(session) == (None,) * 6


def sha(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()


def hashed_rows(session) -> int:
    count = session.scalar(select(func.count()).select_from(HashedSuppression))
    session.rollback()
    return count


def test_an_imported_hash_goes_with_the_erasure_and_the_address_stays_suppressed(
    client, admin, sender, session
):
    body = f"email_sha256\n{sha(JANE)}\n{sha('other@example.com')}\n".encode()
    client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    assert sha(JANE) in client.get("/v1/suppressions.csv", headers=admin).text
    response = client.post(
        "/v1/subjects/erase", json={"email": " Jane.Doe@Example.com", "reason": "request"},
        headers=admin,
    )  # fmt: skip
    assert response.status_code == 200
    assert hashed_rows(session) == 1  # the other address's
    listed = client.get("/v1/suppressions.csv", headers=admin).text
    assert sha(JANE) not in listed
    assert sha("other@example.com") in listed
    assert check(client, sender) == "erased"


def test_a_repeated_erase_removes_a_hash_imported_after_the_first(
    erased, client, admin, sender, session
):
    body = f"email_sha256\n{sha(JANE)}\n".encode()
    client.post("/v1/imports", data=body, content_type="text/csv", headers=admin)
    assert hashed_rows(session) == 1
    client.post("/v1/subjects/erase", json={"email": JANE, "reason": "request"}, headers=admin)
    assert hashed_rows(session) == 0
    assert check(client, sender) == "erased"
