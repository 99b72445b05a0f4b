"""Searching one address and changing its consent on the staff pages."""

import re
from functools import partial

from seeding import record
from sqlalchemy import func, select, update

from suppression.domain.sealing import AddressSealer
from suppression.services.consents.evidence import open_evidence
from suppression.store.models import AccessLogEntry, ConsentEvent, Subject

consent = partial(record, status="opted_in", source="signup_form")


def search(client, token, email, reason=""):
    return client.post(
        "/admin/search", data={"email": email, "reason": reason, "csrf_token": token}
    )


def open_subject(client, token, email):
    response = search(client, token, email)
    assert response.status_code == 303
    return response.headers["Location"], client.get(response.headers["Location"])


def access_rows(session):
    return list(session.scalars(select(AccessLogEntry).order_by(AccessLogEntry.id)))


def text_of(response):
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_a_found_address_opens_its_page_by_id_never_by_address(sign_in, sender):
    client, token = sign_in()
    consent(client, sender, email="jane.doe@example.com")
    response = search(client, token, "  Jane.Doe@Example.COM ")
    assert response.status_code == 303
    location = response.headers["Location"]
    assert re.fullmatch(r"/admin/subjects/\d+", location)
    assert "jane" not in location.lower()
    page = client.get(location)
    assert page.status_code == 200
    assert '<h1 class="address">jane.doe@example.com</h1>' in text_of(page)


def test_the_subject_page_shows_decisions_states_blocks_and_the_timeline_newest_first(
    sign_in, sender
):
    client, token = sign_in()
    consent(
        client,
        sender,
        email="hans@firma.de",
        occurred_at="2026-03-01T09:30:00Z",
        campaign="spring-sale",
        evidence={"form": "newsletter-v2"},
    )
    block = {"email": "hans@firma.de", "kind": "hard_bounce", "source": "esp"}
    client.post("/v1/blocks", json=block, headers=sender)
    _location, page = open_subject(client, token, "hans@firma.de")
    html = text_of(page)
    assert "<strong>DE</strong> — inferred from the domain of the address" in html
    assert "EEA: excluded from campaigns by policy" in html
    assert "<code>bounced</code>: a hard bounce was recorded" in html
    assert "hard bounce</strong> since 2026-11-29 12:00:00 UTC (esp)" in html
    timeline = html[html.index('id="timeline"') :]
    assert timeline.index("hard bounce") < timeline.index("opted in")
    assert "2026-03-01 09:30:00 UTC" in timeline
    assert "recorded 2026-11-29 12:00:00 UTC" in timeline
    assert "spring-sale" in timeline
    assert "<dt>form</dt><dd>newsletter-v2</dd>" in timeline
    assert "api_key:sender-key" in timeline


def test_opting_out_with_a_reason_records_an_event_by_the_staff_member(
    sign_in, sender, session, vault
):
    client, token = sign_in("alice")
    consent(client, sender, email="jane@example.com")
    location, page = open_subject(client, token, "jane@example.com")
    assert '<span class="tag yes">sendable</span>' in text_of(page)
    response = client.post(
        location + "/opt-out",
        data={
            "purpose": "all",
            "channel": "email_request",
            "reason": "Complaint email HD-42",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    assert response.headers["Location"] == location
    page = text_of(client.get(location))
    assert "Opted out of all marketing." in page
    assert "email marketing: opted_out" in page
    assert "<code>opted_out</code>: opted out of this purpose or of all marketing" in page
    event = session.scalars(select(ConsentEvent).order_by(ConsentEvent.id.desc())).first()
    assert (event.action, event.purpose, event.source) == ("opted_out", "all", "email_request")
    assert event.actor == "staff:alice"
    assert open_evidence(vault, event.evidence_sealed).value == {"reason": "Complaint email HD-42"}


def test_a_change_without_a_reason_is_refused_and_stores_nothing(sign_in, sender, session):
    client, token = sign_in()
    consent(client, sender, email="jane@example.com")
    location, _page = open_subject(client, token, "jane@example.com")
    before = session.scalar(select(func.count()).select_from(ConsentEvent))
    session.rollback()  # on SQLite an open transaction would hold the write lock
    for action, data in (
        ("opt-out", {"purpose": "all", "channel": "phone", "reason": " "}),
        ("opt-in", {"purpose": "all", "channel": "phone", "evidence": ""}),
        ("jurisdiction", {"country": "US", "reason": ""}),
        ("jurisdiction", {"country": "XX", "reason": "moved"}),
        ("opt-out", {"purpose": "nonsense", "channel": "phone", "reason": "asked"}),
        (
            "opt-in",
            {
                "purpose": "all",
                "channel": "phone",
                "evidence": "x",
                "occurred_at": "2030-01-01T00:00",
            },
        ),
    ):
        response = client.post(f"{location}/{action}", data={**data, "csrf_token": token})
        assert response.status_code == 422, (action, data)
        assert b'aria-invalid="true"' in response.data
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == before


def test_recording_an_opt_in_keeps_its_evidence_and_time(sign_in, sender, session, vault):
    client, token = sign_in("alice")
    consent(
        client,
        sender,
        email="li@example.com",
        status="opted_out",
        purpose="all",
        occurred_at="2026-11-01T00:00:00Z",
    )
    location, _page = open_subject(client, token, "li@example.com")
    response = client.post(
        location + "/opt-in",
        data={
            "purpose": "email_marketing",
            "channel": "letter",
            "evidence": "Signed paper form dated 2026-11-20, scanned as HD-9",
            "occurred_at": "2026-11-28T10:15",
            "notice_version": "privacy-2026-06",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    page = text_of(client.get(location))
    assert 'Email marketing</th> <td><span class="tag yes">sendable' in page
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.action == "opted_in")).one()
    assert event.actor == "staff:alice"
    assert event.occurred_at.isoformat() == "2026-11-28T10:15:00+00:00"
    assert event.notice_version == "privacy-2026-06"
    assert open_evidence(vault, event.evidence_sealed).value == {
        "evidence": "Signed paper form dated 2026-11-20, scanned as HD-9"
    }


def test_declaring_the_jurisdiction_changes_the_decision(sign_in, sender, session):
    client, token = sign_in("alice")
    consent(client, sender, email="bob@example.com", status="opted_out", purpose="ad_audiences")
    location, page = open_subject(client, token, "bob@example.com")
    response = client.post(
        location + "/jurisdiction",
        data={"country": "de", "reason": "Wrote from Berlin, ticket 7", "csrf_token": token},
    )
    assert response.status_code == 303
    page = text_of(client.get(location))
    assert "<strong>DE</strong> — declared by the person or by staff" in page
    assert "<code>eea</code>" in page
    subject = session.scalars(select(Subject)).one()
    assert (subject.country, subject.country_source) == ("DE", 3)
    event = session.scalars(select(ConsentEvent).where(ConsentEvent.action == "country_set")).one()
    assert event.actor == "staff:alice"
    assert event.country == "DE"


def test_a_malformed_address_says_what_is_wrong_and_logs_nothing(sign_in, session):
    client, token = sign_in()
    for email in ("", "jane", "jane@@example.com", "jane@localhost"):
        response = search(client, token, email)
        assert response.status_code == 422
        assert b'class="field-error"' in response.data
        assert b'aria-invalid="true"' in response.data
    assert b"Not a valid email address" in search(client, token, "jane").data
    assert access_rows(session) == []


def test_an_unknown_address_is_not_found_and_can_be_opted_out_anyway(sign_in, session, sender):
    client, token = sign_in("alice")
    response = search(client, token, "Stranger@Example.com", reason="email to privacy@")
    assert response.status_code == 404
    html = text_of(response)
    assert "Not found: stranger@example.com" in html
    assert "Record opt-out anyway" in html
    assert session.scalar(select(func.count()).select_from(Subject)) == 0
    session.rollback()  # on SQLite an open transaction holds the write lock
    response = client.post(
        "/admin/subjects/opt-out",
        data={
            "email": "stranger@example.com",
            "purpose": "all",
            "channel": "email_request",
            "reason": "Asked by email never to be mailed",
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    page = text_of(client.get(response.headers["Location"]))
    assert "s***@example.com is now on record, opted out of all marketing." in page
    check = client.post(
        "/v1/checks", json={"addresses": ["stranger@example.com"]}, headers=sender
    ).get_json()
    assert check["suppressed"] == [{"email": "stranger@example.com", "reason": "opted_out"}]


def test_an_opt_out_anyway_without_a_reason_is_refused(sign_in, session):
    client, token = sign_in()
    response = client.post(
        "/admin/subjects/opt-out",
        data={"email": "x@example.com", "purpose": "all", "channel": "phone", "csrf_token": token},
    )
    assert response.status_code == 422
    assert b"Say why" in response.data
    assert session.scalar(select(func.count()).select_from(Subject)) == 0


def test_each_search_is_logged_once_and_each_later_opening_again(sign_in, sender, session):
    client, token = sign_in("alice")
    consent(client, sender, email="jane@example.com")
    search(client, token, "nobody@example.com")
    location, _page = open_subject(client, token, "jane@example.com")
    search(client, token, "not an address")  # refused: nothing to log
    client.get(location)
    rows = access_rows(session)
    assert [(r.action, r.subject_id is None) for r in rows] == [
        ("lookup", True),
        ("lookup", False),
        ("view", False),
    ]
    assert {r.actor for r in rows} == {"staff:alice"}
    assert {r.channel for r in rows} == {"page"}


def test_the_reason_for_a_search_is_kept(sign_in, sender, session):
    client, token = sign_in()
    consent(client, sender, email="jane@example.com")
    search(client, token, "jane@example.com", reason="Ticket HD-12: complaint")
    assert access_rows(session)[0].reason == "Ticket HD-12: complaint"


def test_a_missing_subject_is_an_html_404(sign_in):
    client, _token = sign_in()
    response = client.get("/admin/subjects/999")
    assert response.status_code == 404
    assert response.mimetype == "text/html"


def test_an_erased_subject_shows_no_address_and_no_changes(sign_in, sender, session):
    client, token = sign_in()
    consent(client, sender, email="gone@example.com")
    session.execute(
        update(Subject).values(
            email_sealed=None, erased_at=session.scalar(select(Subject.created_at))
        )
    )
    session.commit()
    location, page = open_subject(client, token, "gone@example.com")
    html = text_of(page)
    assert "Erased subject" in html
    assert "gone@example.com" not in html
    assert "/opt-out" not in html
    response = client.post(
        location + "/opt-out",
        data={"purpose": "all", "channel": "phone", "reason": "x", "csrf_token": token},
    )
    assert response.status_code == 409


def test_an_opt_in_dated_minutes_ahead_on_the_page_cannot_outrank_a_later_opt_out(
    sign_in, sender, clock
):
    client, token = sign_in("alice")
    consent(client, sender, email="li@example.com", status="opted_out", country="CA")
    location, _page = open_subject(client, token, "li@example.com")
    clock.advance(minutes=1)
    response = client.post(
        location + "/opt-in",
        data={
            "purpose": "email_marketing",
            "channel": "phone",
            "evidence": "Asked on the phone to get the newsletter again",
            "occurred_at": "2026-11-29T12:05",  # four minutes ahead of the clock
            "csrf_token": token,
        },
    )
    assert response.status_code == 303
    clock.advance(minutes=1)
    consent(client, sender, email="li@example.com", status="opted_out", source="email_request")
    page = text_of(client.get(location))
    decision = 'Email marketing</th> <td><span class="tag no">suppressed</span></td> <td><code>'
    assert decision + "opted_out" in page


def test_staff_record_a_restriction_and_lift_it_on_the_page(sign_in, sender, session, vault):
    client, token = sign_in("alice")
    consent(client, sender, email="bob@example.com")
    location, page = open_subject(client, token, "bob@example.com")
    assert 'value="lift_restriction"' not in page.get_data(as_text=True)  # nothing to lift
    restrict = {"kind": "restriction", "reason": "Art. 18 request, ticket 12", "csrf_token": token}
    assert client.post(location + "/rights-block", data=restrict).status_code == 303
    page = text_of(client.get(location))
    assert "<code>restricted</code>" in page
    assert 'value="lift_restriction"' in page
    lift = {"kind": "lift_restriction", "reason": "Dispute settled, ticket 12", "csrf_token": token}
    assert client.post(location + "/rights-block", data=lift).status_code == 303
    page = text_of(client.get(location))
    assert "<code>restricted</code>" not in page
    actions = [
        (e.action, e.actor, open_evidence(vault, e.evidence_sealed).value)
        for e in session.scalars(select(ConsentEvent).order_by(ConsentEvent.id))
    ]
    assert actions[-2:] == [
        ("restriction", "staff:alice", {"reason": "Art. 18 request, ticket 12"}),
        ("lift_restriction", "staff:alice", {"reason": "Dispute settled, ticket 12"}),
    ]


def test_a_rights_block_needs_a_kind_and_a_reason(sign_in, sender, session):
    client, token = sign_in("alice")
    consent(client, sender, email="bob@example.com")
    location, _page = open_subject(client, token, "bob@example.com")
    response = client.post(
        location + "/rights-block", data={"kind": "complaint", "reason": "", "csrf_token": token}
    )
    assert response.status_code == 422
    page = text_of(response)
    assert "Choose what the person asked for." in page
    assert "Say why" in page
    assert session.scalar(select(func.count()).select_from(ConsentEvent)) == 1


def test_evidence_no_held_key_opens_is_shown_as_such_and_the_page_still_answers(
    sign_in, sender, session
):
    client, token = sign_in()
    consent(client, sender, email="jane@example.com", evidence={"form": "newsletter-v2"})
    consent(
        client, sender, email="jane@example.com", evidence={"form": "footer"}, status="opted_out"
    )
    # Sealed under a key this service does not hold (dropped after a rotation).
    foreign = AddressSealer({9: b"9" * 32}, 9).seal_evidence(b'{"form":"newsletter-v2"}')
    first = session.scalar(select(func.min(ConsentEvent.id)))
    session.execute(
        update(ConsentEvent).where(ConsentEvent.id == first).values(evidence_sealed=foreign)
    )
    session.commit()
    _location, page = open_subject(client, token, "jane@example.com")
    assert page.status_code == 200
    timeline = text_of(page)[text_of(page).index('id="timeline"') :]
    assert "sealed with a key that is no longer held: it cannot be opened" in timeline
    assert "<dt>form</dt><dd>footer</dd>" in timeline
    assert "newsletter-v2" not in timeline


def test_the_timeline_names_the_channel_and_the_platform_s_event_id(
    sign_in, sender, session, vault, settings, clock
):
    from suppression.domain.feedback import SES, FeedbackAction, FeedbackEvent
    from suppression.services.consents.alarms import AlarmRule
    from suppression.services.feedback.intake import receive_feedback

    client, token = sign_in()
    bounce = FeedbackEvent(
        platform=SES,
        event_id="0100018c-bounce-1:0",
        event_type="Bounce",
        action=FeedbackAction.HARD_BOUNCE,
        address="pat@example.com",
        occurred_at=clock(),
        details={"bounce_type": "Permanent"},
    )
    receive_feedback(session, vault, settings.policy, [bounce], clock(), AlarmRule())
    session.commit()
    consent(client, sender, email="pat@example.com", source="partner-crm")
    _location, page = open_subject(client, token, "pat@example.com")
    timeline = text_of(page)[text_of(page).index('id="timeline"') :]
    assert '<th scope="col">Channel</th>' in timeline
    assert 'Amazon SES webhook<br><span class="muted"><code>ses</code></span>' in timeline
    assert "<dt>platform event id</dt><dd>0100018c-bounce-1:0</dd>" in timeline
    assert "<dt>platform event type</dt><dd>Bounce</dd>" in timeline
    # A source the caller named is shown as written.
    assert '<td data-label="Channel">partner-crm</td>' in timeline
