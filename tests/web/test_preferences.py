"""The preference page: one switch per purpose, opt out of everything, opt back in
(once the mailbox confirms: tests/web/test_double_opt_in.py has the whole flow;
recorded as consent with the notice version), never over an erasure or complaint."""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
from smtp_server import smtp_server
from sqlalchemy import select

from suppression.config.environment import settings_from_env
from suppression.config.settings import LinkSettings, MailSettings
from suppression.store.models import ConsentEvent, ConsentState, Subject

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@example.com"
NOTICE = "prefs-2026-11"


@pytest.fixture
def relay():
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(make_settings, relay):
    return replace(
        make_settings(),
        public_base_url=ORIGIN,
        unsubscribe_mailbox=MAILBOX,
        links=LinkSettings(page_rate_limit="1000 per minute", notice_version=NOTICE),
        mail=MailSettings(smtp_url=relay.url, mail_from="news@example.com"),
    )


def confirm_from_mail(client, relay) -> None:
    """Use the link of the newest confirmation mail, as the person would."""
    link = re.search(rf"{re.escape(ORIGIN)}(/confirm/\S+)", relay.messages[-1].get_content())
    assert link, "no confirmation link in the mail"
    response = client.post(link.group(1), follow_redirects=True)
    assert response.status_code == 200


def preferences_path(client, headers, email, **fields) -> str:
    response = client.post(
        "/v1/unsubscribe-links", json={"email": email, **fields}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return urlsplit(response.get_json()["preferences_url"]).path


def switches(page: str) -> dict[str, tuple[bool, bool]]:
    """purpose -> (checked, disabled) for every switch on the page."""
    found = {}
    for tag in re.findall(r"<input type=\"checkbox\"[^>]*>", page, re.S):
        purpose = re.search(r'value="([^"]+)"', tag).group(1)
        found[purpose] = (" checked" in tag, " disabled" in tag)
    return found


def save(client, path, receive, shown=("email_marketing", "ad_audiences"), **extra):
    """The form sent, and the page its redirect shows."""
    return client.post(
        path,
        data={"action": "save", "shown": list(shown), "receive": list(receive), **extra},
        follow_redirects=True,
    )


def decision(client, headers, email, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": [email]}, headers=headers
    )
    result = response.get_json()["results"][0]
    return result["sendable"], result["reason"]


def events(session):
    """Every event, detached: reading one later must not open a (SQLite: writing)
    transaction that would hold the lock against the next request."""
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.expunge_all()
    session.rollback()
    return found


def count_rows(session, model) -> int:
    session.expire_all()
    found = len(session.scalars(select(model)).all())
    session.rollback()
    return found


def test_the_page_shows_one_switch_per_purpose_as_stored(client, sender):
    client.post(
        "/v1/consents",
        json={
            "email": "jane@example.com",
            "purpose": "ad_audiences",
            "status": "opted_out",
            "source": "email_request",
        },
        headers=sender,
    )
    response = client.get(preferences_path(client, sender, "jane@example.com"))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "j***@example.com" in page
    assert switches(page) == {"email_marketing": (True, False), "ad_audiences": (False, False)}
    # The notice's version is in the page for the record, not in the text people read.
    assert f'data-notice-version="{NOTICE}"' in page
    assert NOTICE not in re.sub(r"<[^>]+>", "", page)
    assert "Unsubscribe from everything" in page
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_viewing_the_page_changes_nothing_even_for_a_new_address(client, sender, session):
    path = preferences_path(client, sender, "new@example.com")
    for _ in range(5):
        assert client.get(path).status_code == 200
        assert client.head(path).status_code == 200
    assert count_rows(session, Subject) == 0
    assert events(session) == []


def test_switching_one_purpose_off_opts_out_of_it_only(client, sender, session):
    path = preferences_path(client, sender, "jane@example.com", campaign="nov")
    response = save(client, path, receive=["ad_audiences"])
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "You will get no more marketing email." in page
    assert switches(page) == {"email_marketing": (False, False), "ad_audiences": (True, False)}
    [event] = events(session)
    assert (event.action, event.purpose, event.source, event.campaign) == (
        "opted_out",
        "email_marketing",
        "preference_page",
        "nov",
    )
    assert event.notice_version is None
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")
    assert decision(client, sender, "jane@example.com", "ad_audiences") == (True, None)


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_opting_back_in_is_recorded_as_consent_with_the_notice_version(
    client, sender, session, relay
):
    path = preferences_path(client, sender, "jane@example.com")
    unsubscribe = path.replace("/preferences/", "/u/")
    client.post(unsubscribe, data={"List-Unsubscribe": "One-Click"})
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")
    page = client.get(path).get_data(as_text=True)
    assert switches(page)["email_marketing"] == (False, False)
    response = save(client, path, receive=["email_marketing", "ad_audiences"])
    assert "Open the link in it within 48 hours" in response.get_data(as_text=True)
    assert [e.action for e in events(session)] == ["opted_out"]
    confirm_from_mail(client, relay)
    assert switches(client.get(path).get_data(as_text=True))["email_marketing"] == (True, False)
    opt_in = events(session)[-1]
    assert (opt_in.action, opt_in.purpose, opt_in.source, opt_in.notice_version) == (
        "opted_in",
        "email_marketing",
        "preference_page",
        NOTICE,
    )
    assert opt_in.ip == "127.0.0.1"
    assert decision(client, sender, "jane@example.com") == (True, None)


def test_opting_in_where_the_jurisdiction_requires_it_makes_the_address_sendable(
    client, sender, session, relay
):
    path = preferences_path(client, sender, "li@example.ca")
    assert decision(client, sender, "li@example.ca") == (False, "opt_in_required")
    assert switches(client.get(path).get_data(as_text=True))["email_marketing"] == (False, False)
    save(client, path, receive=["email_marketing"])
    assert decision(client, sender, "li@example.ca") == (False, "opt_in_required")
    confirm_from_mail(client, relay)
    assert decision(client, sender, "li@example.ca") == (True, None)
    # Leaving an opt-in-regime purpose off records nothing for it.
    assert [e.purpose for e in events(session)] == ["email_marketing"]


def test_opt_out_of_everything(client, sender, session):
    path = preferences_path(client, sender, "jane@example.com")
    response = client.post(path, data={"action": "opt_out_all"}, follow_redirects=True)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "no marketing from us any more" in page
    assert switches(page) == {"email_marketing": (False, False), "ad_audiences": (False, False)}
    [event] = events(session)
    assert (event.purpose, event.source) == ("all", "preference_page")
    for purpose in ("email_marketing", "ad_audiences"):
        assert decision(client, sender, "jane@example.com", purpose) == (False, "opted_out")


def test_saving_without_changes_records_nothing(client, sender, session):
    path = preferences_path(client, sender, "jane@example.com")
    response = save(client, path, receive=["email_marketing", "ad_audiences"])
    assert "Nothing needed changing." in response.get_data(as_text=True)
    assert events(session) == []


def test_a_purpose_that_was_not_on_the_page_is_left_alone(client, sender, session):
    path = preferences_path(client, sender, "jane@example.com")
    save(client, path, receive=[], shown=["ad_audiences"])
    assert [(e.action, e.purpose) for e in events(session)] == [("opted_out", "ad_audiences")]
    assert decision(client, sender, "jane@example.com") == (True, None)


def test_a_complaint_is_never_overridden_from_the_page(client, sender, session):
    email = "angry@example.com"
    client.post("/v1/blocks", json={"email": email, "kind": "complaint"}, headers=sender)
    path = preferences_path(client, sender, email)
    page = client.get(path).get_data(as_text=True)
    assert "reported one of our emails as spam" in page
    assert switches(page) == {"email_marketing": (False, True), "ad_audiences": (False, True)}
    # Nothing can be switched on: no save button, and not the unsubscribe mailbox (its
    # mails are opt-outs) for getting mail back; without CONTACT_MAILBOX, a reply.
    assert "Save my choices" not in page
    assert f"mailto:{MAILBOX}" not in page
    assert "reply to one of them" in page
    before = len(events(session))
    # A hand-made POST asking to switch everything on is refused, and says so.
    response = save(client, path, receive=["email_marketing", "ad_audiences"])
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Saved" not in text
    assert "Not switched on: marketing email, personalised ads on other sites" in text
    assert len(events(session)) == before
    assert decision(client, sender, email) == (False, "complained")


def test_an_objection_stops_opting_back_in_but_not_opting_out(client, sender, session):
    email = "objector@example.com"
    client.post("/v1/blocks", json={"email": email, "kind": "objection"}, headers=sender)
    path = preferences_path(client, sender, email)
    assert "objected to direct marketing" in client.get(path).get_data(as_text=True)
    save(client, path, receive=["email_marketing"])
    client.post(path, data={"action": "opt_out_all"})
    assert [(e.action, e.purpose) for e in events(session)][-1] == ("opted_out", "all")
    session.expire_all()
    assert session.scalars(select(ConsentState.status)).all() == ["opted_out"]
    session.rollback()


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_an_erased_subject_sees_why_and_nothing_is_recorded(client, sender, admin, session):
    email = "gone@example.com"
    client.post(
        "/v1/consents",
        json={
            "email": email,
            "purpose": "email_marketing",
            "status": "opted_out",
            "source": "email_request",
        },
        headers=sender,
    )
    path = preferences_path(client, sender, email)
    assert (
        client.post(
            "/v1/subjects/erase", json={"email": email, "reason": "request"}, headers=admin
        ).status_code
        == 200
    )
    before = len(events(session))
    page = client.get(path).get_data(as_text=True)
    assert "erased what we held about this address" in page
    assert switches(page) == {}
    response = save(client, path, receive=["email_marketing"])
    assert "Saved" not in response.get_data(as_text=True)
    client.post(path, data={"action": "opt_out_all"})
    assert len(events(session)) == before
    assert decision(client, sender, email) == (False, "erased")


def test_a_post_without_an_action_changes_nothing(client, sender, session):
    path = preferences_path(client, sender, "jane@example.com")
    response = client.post(path, data={"receive": []})
    assert response.status_code == 400
    assert "Nothing was changed" in response.get_data(as_text=True)
    assert events(session) == []


def test_the_preference_page_works_in_chromium(live_server, page, screenshot, client, sender):
    path = preferences_path(client, sender, "jane.doe@example.com")
    page.goto(live_server + path)
    assert page.locator("h1").inner_text() == "What we may send you"
    marketing = page.get_by_label("Marketing email")
    assert marketing.is_checked()
    screenshot(page, "preferences")
    marketing.uncheck()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_load_state()
    assert "You will get no more marketing email." in page.get_by_role("status").inner_text()
    assert not page.get_by_label("Marketing email").is_checked()
    screenshot(page, "preferences-saved")
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")


def test_the_contact_mailbox_is_read_from_the_environment(tmp_path):
    environ = {
        "SUPPRESSION_INSTANCE": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path}/settings.db",
    }
    assert settings_from_env(environ).contact_mailbox is None
    environ["CONTACT_MAILBOX"] = "privacy@example.com"
    assert settings_from_env(environ).contact_mailbox == "privacy@example.com"
