"""Two kinds of link and double opt-in: the unsubscribe token only opts out; the
preference page asks the mailbox to confirm an opt-in; the confirmation link
records it with the evidence of both steps. Mail goes through a real SMTP server
on loopback (aiosmtpd)."""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import urlsplit

import pytest
from legacy_tokens import legacy_unsubscribe_token
from seeding import fold_one_clicks, record
from smtp_server import smtp_server
from sqlalchemy import func, select

from suppression.config.settings import LinkSettings, MailSettings
from suppression.domain.tokens import LinkTokens
from suppression.services.consents.evidence import open_evidence
from suppression.services.links.opt_in_requests import RESEND_AFTER
from suppression.store.models import ConsentEvent, OptInRequest, Subject

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@example.com"
SENDER = "Example News <news@example.com>"
NOTICE = "prefs-2026-12"
CONFIRM_LINK = re.compile(rf"{re.escape(ORIGIN)}(/confirm/[A-Za-z0-9_-]+)")
BOTH = ("email_marketing", "ad_audiences")


@pytest.fixture
def relay():
    with smtp_server() as server:
        yield server


def page_settings(make_settings, smtp_url: str | None):
    mail = MailSettings(smtp_url=smtp_url, mail_from=SENDER) if smtp_url else MailSettings()
    return replace(
        make_settings(),
        public_base_url=ORIGIN,
        unsubscribe_mailbox=MAILBOX,
        links=LinkSettings(page_rate_limit="1000 per minute", notice_version=NOTICE),
        mail=mail,
    )


@pytest.fixture
def settings(make_settings, relay):
    return page_settings(make_settings, relay.url)


def mint(client, headers, email, **fields) -> dict:
    response = client.post(
        "/v1/unsubscribe-links", json={"email": email, **fields}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    return {"url": urlsplit(body["url"]).path, "prefs": urlsplit(body["preferences_url"]).path}


def save(client, path, receive, shown=BOTH):
    """The form sent, and the page its redirect shows."""
    return client.post(
        path,
        data={"action": "save", "shown": list(shown), "receive": list(receive)},
        follow_redirects=True,
    )


def decision(client, headers, email, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": [email]}, headers=headers
    )
    result = response.get_json()["results"][0]
    return result["sendable"], result["reason"]


def events(session) -> list[ConsentEvent]:
    """Every event, detached: reading one later must not open a (SQLite: writing)
    transaction that would hold the lock against the next request."""
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.expunge_all()
    session.rollback()
    return found


def evidence(app, event: ConsentEvent) -> dict:
    """An event's free evidence, opened (it is stored sealed)."""
    return open_evidence(app.extensions["suppression"].vault, event.evidence_sealed).value


def event_ids(session) -> list[int]:
    return [event.id for event in events(session)]


def count(session, model) -> int:
    found = session.scalar(select(func.count()).select_from(model))
    session.rollback()
    return found


def confirm_path(message) -> str:
    match = CONFIRM_LINK.search(message.get_content())
    assert match, message.get_content()
    return match.group(1)


def key_text(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode().rstrip("=")


opt_out = partial(record, purpose="all", source="email_request")


# -- the unsubscribe token only opts out -------------------------------------------


def test_the_unsubscribe_token_cannot_switch_anything_back_on(client, sender, session, relay):
    opt_out(client, sender, "jane@example.com")
    links = mint(client, sender, "jane@example.com", purpose="ad_audiences")
    before = event_ids(session)
    # The attack: the header's token on the preference page, asking for every purpose.
    forged = links["url"].replace("/u/", "/preferences/")
    response = save(client, forged, receive=BOTH)
    assert response.status_code == 400
    assert "this link can only unsubscribe" in response.get_data(as_text=True)
    assert event_ids(session) == before
    assert count(session, OptInRequest) == 0
    assert relay.messages == []
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")


def test_the_unsubscribe_token_on_the_preference_page_leads_to_its_unsubscribe_page(client, sender):
    links = mint(client, sender, "jane@example.com")
    response = client.get(links["url"].replace("/u/", "/preferences/"))
    assert response.status_code == 303
    assert response.headers["Location"] == links["url"]
    assert client.post(links["url"].replace("/u/", "/preferences/"), data={}).status_code == 400


def test_an_unsubscribe_page_opened_with_its_own_token_offers_no_preference_page(client, sender):
    links = mint(client, sender, "jane@example.com")
    page = client.get(links["url"]).get_data(as_text=True)
    assert "/preferences/" not in page
    done = client.post(links["url"], data={"action": "unsubscribe"}, follow_redirects=True)
    done = done.get_data(as_text=True)
    assert "/preferences/" not in done
    # The preference token opens /u/ too (it may do more), and links back.
    page = client.get(links["prefs"].replace("/preferences/", "/u/")).get_data(as_text=True)
    assert links["prefs"] in page


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_token_minted_before_kinds_still_opts_out_and_nothing_else(
    app, client, sender, session, clock
):
    token = legacy_unsubscribe_token(b"t" * 32, clock(), "jane@example.com")
    assert client.get(f"/u/{token}").status_code == 200
    assert save(client, f"/preferences/{token}", receive=BOTH).status_code == 400
    assert events(session) == []
    assert client.post(f"/u/{token}", data={"List-Unsubscribe": "One-Click"}).status_code == 200
    fold_one_clicks(app)
    [event] = events(session)
    assert (event.action, event.purpose, event.source) == ("opted_out", "all", "one_click")
    assert "link_minted_by" not in evidence(app, event)


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_confirmation_token_opens_no_link_page_and_a_link_token_no_confirmation(
    client, sender, relay, session
):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    token = confirm.rsplit("/", 1)[1]
    for page in ("/u/", "/preferences/"):
        assert client.get(page + token).status_code == 400
        assert client.post(page + token, data={"List-Unsubscribe": "One-Click"}).status_code == 400
    link_token = links["prefs"].rsplit("/", 1)[1]
    assert client.get(f"/confirm/{link_token}").status_code == 400
    assert client.post(f"/confirm/{link_token}").status_code == 400
    assert [e.action for e in events(session)] == []


# -- double opt-in -------------------------------------------------------------------


def test_switching_on_records_nothing_and_mails_the_address_a_confirmation_link(
    client, sender, session, relay
):
    opt_out(client, sender, "jane@example.com")
    links = mint(client, sender, "jane@example.com", campaign="dec-news")
    before = event_ids(session)
    response = save(client, links["prefs"], receive=["email_marketing"], shown=BOTH)
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "check your inbox" in text
    assert "j***@example.com" in text
    assert event_ids(session) == before  # nothing recorded yet
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")
    [message] = relay.messages
    assert message["To"] == "jane@example.com"
    assert message["From"] == SENDER
    assert message["Auto-Submitted"] == "auto-generated"
    assert "List-Unsubscribe" not in message
    assert relay.catcher.envelopes == [("news@example.com", ["jane@example.com"])]
    body = message.get_content()
    assert "marketing email" in body
    assert confirm_path(message).startswith("/confirm/")
    assert "jane" not in confirm_path(message)
    [request] = session.scalars(select(OptInRequest)).all()
    assert request.purposes == "email_marketing"
    assert request.mail_sent_at is not None
    session.expunge_all()
    session.rollback()


def test_the_confirmation_page_changes_nothing_and_its_post_records_both_steps(
    app, client, sender, make_key, session, relay, clock
):
    platform = make_key("sender", "platform")
    opt_out(client, sender, "jane@example.com")
    links = mint(client, platform, "jane@example.com", campaign="dec-news")
    client.environ_base["HTTP_USER_AGENT"] = "Browser at home"
    save(client, links["prefs"], receive=["email_marketing", "ad_audiences"])
    confirm = confirm_path(relay.messages[-1])
    before = event_ids(session)
    clock.advance(minutes=30)
    for _ in range(3):  # mail scanners open the link, with GET and HEAD
        page = client.get(confirm)
        assert page.status_code == 200
        assert client.head(confirm).status_code == 200
    assert "Yes, send me this" in page.get_data(as_text=True)
    assert "j***@example.com" in page.get_data(as_text=True)
    assert event_ids(session) == before
    client.environ_base["HTTP_USER_AGENT"] = "Phone mail app"
    posted = client.post(confirm, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert posted.status_code == 303  # post/redirect/get: a reload repeats nothing
    assert urlsplit(posted.headers["Location"]).path == confirm
    response = client.get(posted.headers["Location"])
    assert response.status_code == 200
    assert "Thank you: confirmed" in response.get_data(as_text=True)
    opted_in = [e for e in events(session) if e.action == "opted_in"]
    assert sorted(e.purpose for e in opted_in) == ["ad_audiences", "email_marketing"]
    event = opted_in[0]
    assert event.source == "preference_page"
    assert event.actor == "recipient"
    assert event.campaign == "dec-news"
    assert event.notice_version == NOTICE
    assert (event.ip, event.user_agent) == ("198.51.100.7", "Phone mail app")
    opened = evidence(app, event)
    assert opened["link_minted_by"] == "api_key:platform"
    assert opened["request_ip"] == "127.0.0.1"
    assert opened["request_user_agent"] == "Browser at home"
    assert opened["request_notice_version"] == NOTICE
    assert opened["requested_at"] == "2026-11-29T12:00:00Z"
    assert opened["confirmed_at"] == "2026-11-29T12:30:00Z"
    assert opened["confirmation_mail_sent_at"] == "2026-11-29T12:00:00Z"
    assert opened["link_kind"] == "preferences"
    assert event.occurred_at == clock()
    assert decision(client, sender, "jane@example.com") == (True, None)
    # A second POST (a reload, a scanner that submits) changes nothing.
    again = client.post(confirm, follow_redirects=True)
    assert again.status_code == 200
    assert "Already confirmed" in again.get_data(as_text=True)
    assert len(events(session)) == len(before) + 2


def test_a_sender_that_gets_409_cannot_re_subscribe_by_minting_a_link(
    client, sender, session, relay
):
    opt_out(client, sender, "jane@example.com")
    body = {"email": "jane@example.com", "purpose": "email_marketing", "status": "opted_in"}
    refused = client.post("/v1/consents", json={**body, "source": "crm"}, headers=sender)
    assert refused.status_code == 409
    links = mint(client, sender, "jane@example.com")
    save(client, links["prefs"], receive=BOTH)
    # The sender holds the link, not the mailbox: the opt-in waits for a mail it never sees.
    assert [e.action for e in events(session)] == ["opted_out"]
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")
    assert [m["To"] for m in relay.messages] == ["jane@example.com"]


@pytest.mark.parametrize("change", ["flip", "cut", "other key"])
def test_a_changed_or_cut_confirmation_link_answers_400_and_records_nothing(
    client, sender, session, relay, clock, change
):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    token = confirm_path(relay.messages[-1]).rsplit("/", 1)[1]
    if change == "flip":
        bad = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    elif change == "cut":
        bad = token[:-3]
    else:
        other = LinkTokens({1: b"x" * 32})
        bad = other.mint_confirmation("li@example.ca", ["email_marketing"], 1, clock())
    for method in ("GET", "POST"):
        response = client.open(f"/confirm/{bad}", method=method)
        assert response.status_code == 400
        assert response.mimetype == "text/html"
    assert events(session) == []


def test_an_expired_confirmation_link_answers_400(client, sender, session, relay, clock):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    clock.advance(hours=48, seconds=1)
    assert client.get(confirm).status_code == 400
    response = client.post(confirm, follow_redirects=True)
    assert response.status_code == 400
    assert "expired" in response.get_data(as_text=True)
    assert events(session) == []


def test_a_link_for_another_request_of_the_same_address_is_refused(
    app, client, sender, session, relay, clock
):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    request_id = session.scalar(select(OptInRequest.id))
    session.rollback()
    tokens = LinkTokens({1: b"t" * 32})
    # Genuine tokens, but not what the request holds: other purposes, another time.
    for purposes, when in (
        (["email_marketing", "ad_audiences"], clock()),
        (["email_marketing"], clock() - timedelta(seconds=1)),
    ):
        token = tokens.mint_confirmation("li@example.ca", purposes, request_id, when)
        assert client.post(f"/confirm/{token}").status_code == 400
    assert events(session) == []


def test_at_most_one_mail_per_address_and_purposes_within_ten_minutes(
    client, sender, session, relay, clock
):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    again = save(client, links["prefs"], receive=["email_marketing"])
    assert "at most one such email every 10 minutes" in again.get_data(as_text=True)
    assert len(relay.messages) == 1
    save(client, links["prefs"], receive=["email_marketing", "ad_audiences"])
    assert len(relay.messages) == 2  # another set of purposes is another request
    clock.advance(seconds=RESEND_AFTER.total_seconds() + 1)
    save(client, links["prefs"], receive=["email_marketing"])
    assert len(relay.messages) == 3
    assert count(session, OptInRequest) == 3


def test_a_complaint_after_the_request_still_wins_at_confirmation(client, sender, session, relay):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    body = {"email": "li@example.ca", "kind": "complaint"}
    assert client.post("/v1/blocks", json=body, headers=sender).status_code == 201
    response = client.post(confirm, follow_redirects=True)
    assert response.status_code == 200
    assert "Nothing was switched on" in response.get_data(as_text=True)
    assert [e.action for e in events(session)] == ["complaint"]
    assert decision(client, sender, "li@example.ca") == (False, "complained")


def test_opting_out_on_the_page_stays_immediate_beside_a_pending_opt_in(
    client, sender, session, relay
):
    body = {"email": "jane@example.com", "purpose": "ad_audiences", "status": "opted_out"}
    client.post("/v1/consents", json={**body, "source": "form"}, headers=sender)
    links = mint(client, sender, "jane@example.com")
    # Marketing email off, ads on: the opt-out is recorded now, the opt-in waits.
    save(client, links["prefs"], receive=["ad_audiences"])
    actions = [(e.action, e.purpose) for e in events(session)]
    assert actions == [("opted_out", "ad_audiences"), ("opted_out", "email_marketing")]
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")
    assert len(relay.messages) == 1
    client.post(confirm_path(relay.messages[-1]), follow_redirects=True)
    assert decision(client, sender, "jane@example.com", "ad_audiences") == (True, None)
    assert decision(client, sender, "jane@example.com") == (False, "opted_out")


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_erasing_the_address_drops_its_pending_requests(client, sender, admin, session, relay):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    erase = {"email": "li@example.ca", "reason": "request"}
    assert client.post("/v1/subjects/erase", json=erase, headers=admin).status_code == 200
    assert count(session, OptInRequest) == 0
    assert client.post(confirm).status_code == 400
    assert decision(client, sender, "li@example.ca") == (False, "erased")


# -- the relay -------------------------------------------------------------------------


def test_a_failing_relay_loses_nothing_and_the_worker_sends_later(
    app, client, sender, session, relay, clock
):
    from suppression.worker.confirmation_mail import ConfirmationMailer

    relay.catcher.refuse_next.append("451 4.3.0 mailbox busy, try later")
    links = mint(client, sender, "li@example.ca")
    response = save(client, links["prefs"], receive=["email_marketing"])
    assert "it may take a little" in response.get_data(as_text=True)
    assert relay.messages == []
    request = session.scalars(select(OptInRequest)).one()
    assert (request.mail_attempts, request.mail_sent_at) == (1, None)
    assert request.mail_error == "recipient refused (SMTP 451)"
    assert request.mail_available_at > clock()
    session.rollback()
    state = app.extensions["suppression"]
    mailer = ConfirmationMailer(state.sessions, state.vault, state.settings, clock=clock)
    assert mailer.drain().sent == 0  # not due yet: the backoff holds it
    clock.advance(minutes=1)
    assert mailer.drain().sent == 1
    assert mailer.drain().sent == 0  # sent once only
    [message] = relay.messages
    client.post(confirm_path(message), follow_redirects=True)
    assert decision(client, sender, "li@example.ca") == (True, None)


def test_a_permanent_refusal_gives_the_mail_up(app, client, sender, session, relay, clock):
    relay.catcher.refuse_next.append("550 5.1.1 no such mailbox")
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    request = session.scalars(select(OptInRequest)).one()
    assert request.mail_failed_at is not None
    assert request.mail_error == "recipient refused (SMTP 550)"
    session.rollback()


@pytest.mark.committed  # a command: its own engine
def test_sync_sends_what_the_web_process_could_not(
    app, client, sender, session, relay, clock, database_url, tmp_path, monkeypatch
):
    from click.testing import CliRunner

    from suppression.cli.main import main

    clock.current = datetime.now(UTC)  # the command runs on the real clock
    relay.catcher.refuse_next.append("421 4.4.2 closing")
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    session.execute(OptInRequest.__table__.update().values(mail_available_at=None))
    session.commit()
    keys = app.extensions["suppression"].settings.keys
    for name, value in {
        "DATABASE_URL": database_url,
        "SUPPRESSION_INSTANCE": str(tmp_path / "cli"),
        "ADDRESS_INDEX_KEY": key_text(keys.index_key),
        "ADDRESS_SEALING_KEYS": f"1:{key_text(keys.sealing_keys[1])}",
        "TOKEN_KEYS": f"1:{key_text(keys.token_keys[1])}",
        "SECRET_KEY": keys.secret_key,
        "PUBLIC_BASE_URL": ORIGIN,
        "SMTP_URL": relay.url,
        "MAIL_FROM": SENDER,
    }.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(main, ["sync"])
    assert result.exit_code == 0, result.output
    [message] = relay.messages
    assert message["To"] == "li@example.ca"
    assert client.post(confirm_path(message), follow_redirects=True).status_code == 200
    assert decision(client, sender, "li@example.ca") == (True, None)


@pytest.mark.parametrize("mode", ["starttls", "tls"])
def test_the_relay_over_starttls_or_implicit_tls_with_credentials(
    make_settings, sender_for, tmp_path, mode
):
    with smtp_server(mode, tmp_path) as server:
        settings = page_settings(make_settings, server.url)
        settings = replace(settings, mail=replace(settings.mail, smtp_ca_file=server.ca_file))
        client, key = sender_for(settings)
        links = mint(client, key, "li@example.ca")
        response = save(client, links["prefs"], receive=["email_marketing"])
        assert "check your inbox" in response.get_data(as_text=True)
        [message] = server.messages
        assert client.post(confirm_path(message), follow_redirects=True).status_code == 200


def test_without_smtp_the_page_says_how_else_and_records_nothing(
    make_settings, sender_for, session
):
    contact = "privacy@example.com"
    client, key = sender_for(replace(page_settings(make_settings, None), contact_mailbox=contact))
    opt_out(client, key, "jane@example.com")
    links = mint(client, key, "jane@example.com")
    response = save(client, links["prefs"], receive=BOTH)
    text = re.sub(r"\s+", " ", response.get_data(as_text=True))
    assert "we must first confirm by email" in text
    # The people's address (CONTACT_MAILBOX), never the unsubscribe mailbox, whose
    # poller would take the mail for an opt-out.
    assert f'<a href="mailto:{contact}">{contact}</a>' in text
    assert f"mailto:{MAILBOX}" not in text
    assert [e.action for e in events(session)] == ["opted_out"]
    assert count(session, OptInRequest) == 0


def test_the_address_is_never_in_the_database_in_clear(client, sender, session, relay, dump):
    links = mint(client, sender, "Pending.Person@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    assert count(session, OptInRequest) == 1
    data = dump()
    assert b"pending.person@example.ca" not in data.lower()
    assert confirm_path(relay.messages[-1]).rsplit("/", 1)[1].encode() not in data
    assert count(session, Subject) == 0  # asking creates no subject


# -- end to end, in a browser -------------------------------------------------------


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_new_user_opts_out_then_back_in_through_the_mail_in_chromium(
    live_server, page, screenshot, client, make_key, relay, sign_in
):
    platform = make_key("sender", "platform")
    body = client.post(
        "/v1/unsubscribe-links",
        json={"email": "jane.doe@example.com", "campaign": "dec-news"},
        headers=platform,
    ).get_json()
    one_click = client.post(urlsplit(body["url"]).path, data={"List-Unsubscribe": "One-Click"})
    assert one_click.status_code == 200
    page.goto(live_server + urlsplit(body["preferences_url"]).path)
    marketing = page.get_by_label("Marketing email")
    assert not marketing.is_checked()
    marketing.check()
    page.get_by_role("button", name="Save my choices").click()
    page.wait_for_load_state()
    assert "check your inbox" in page.get_by_role("status").inner_text()
    screenshot(page, "double-opt-in-requested")
    [message] = relay.messages
    page.goto(live_server + confirm_path(message))
    assert page.locator("h1").inner_text() == "Confirm your choice"
    screenshot(page, "double-opt-in-confirm")
    page.get_by_role("button", name="Yes, send me this").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "Thank you: confirmed"
    page.goto(live_server + urlsplit(body["preferences_url"]).path)
    assert page.get_by_label("Marketing email").is_checked()
    # Staff see the opt-in with both steps' evidence on the subject page.
    staff_client, token = sign_in("alice")
    found = staff_client.post(
        "/admin/search", data={"email": "jane.doe@example.com", "csrf_token": token}
    )
    history = re.sub(r"\s+", " ", staff_client.get(found.headers["Location"]).get_data(True))
    for text in (
        "request ip",
        "request user agent",
        "requested at",
        "confirmed at",
        "confirmation mail sent at",
        "link minted by</dt><dd>api_key:platform",
        "double opt in</dt><dd>confirmed from the mailbox",
    ):
        assert text in history, text


# -- evidence and rights ------------------------------------------------------------------


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_every_link_records_which_key_minted_it(app, client, make_key, session):
    platform = make_key("sender", "platform")
    links = mint(client, platform, "jane@example.com", purpose="ad_audiences")
    assert client.post(links["url"], data={"List-Unsubscribe": "One-Click"}).status_code == 200
    client.post(links["prefs"], data={"action": "opt_out_all"})
    first, second = events(session)
    assert (first.source, evidence(app, first)["link_minted_by"]) == (
        "one_click",
        "api_key:platform",
    )
    assert evidence(app, first)["link_kind"] == "unsubscribe"
    assert (second.source, evidence(app, second)["link_minted_by"]) == (
        "preference_page",
        "api_key:platform",
    )


def test_the_export_lists_a_pending_request_with_its_evidence(
    client, sender, admin, session, relay
):
    links = mint(client, sender, "li@example.ca")
    client.environ_base["HTTP_USER_AGENT"] = "Browser at home"
    save(client, links["prefs"], receive=["email_marketing"])
    body = {"email": "li@example.ca", "reason": "DSAR 7"}
    document = client.post("/v1/subjects/export", json=body, headers=admin).get_json()
    [request] = document["opt_in_requests"]
    assert request["purposes"] == ["email_marketing"]
    assert request["confirmed_at"] is None
    assert request["mail_sent_at"] == "2026-11-29T12:00:00Z"
    assert request["evidence"]["request_user_agent"] == "Browser at home"
    assert request["evidence"]["link_minted_by"] == "api_key:sender-key"


@pytest.mark.committed  # the confirmations race in threads
def test_two_racing_confirmations_record_one_opt_in(app, client, sender, session, relay):
    import threading

    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    start = threading.Barrier(4)
    answers: list[int] = []

    def post() -> None:
        own = app.test_client()
        start.wait()
        answers.append(own.post(confirm, follow_redirects=True).status_code)

    threads = [threading.Thread(target=post) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200, 200, 200, 200]
    assert [e.action for e in events(session)] == ["opted_in"]


def test_staff_see_a_request_waiting_for_the_mailbox(client, sender, relay, sign_in):
    opt_out(client, sender, "jane@example.com")
    relay.catcher.refuse_next.append("451 4.3.0 mailbox busy, try later")
    links = mint(client, sender, "jane@example.com")
    save(client, links["prefs"], receive=["email_marketing"])
    staff_client, token = sign_in("alice")
    found = staff_client.post(
        "/admin/search", data={"email": "jane@example.com", "csrf_token": token}
    )
    page = re.sub(r"\s+", " ", staff_client.get(found.headers["Location"]).get_data(True))
    assert "Waiting for the mailbox to confirm" in page
    assert "<strong>email marketing</strong>, asked 2026-11-29 12:00:00 UTC" in page
    assert "mail not sent yet, retrying (recipient refused (SMTP 451))" in page


def test_the_link_stands_whole_on_one_line_of_the_raw_mail(client, sender, relay):
    links = mint(client, sender, "li@example.ca", campaign="a-campaign-name-long-enough")
    save(client, links["prefs"], receive=["email_marketing", "ad_audiences"])
    [message] = relay.messages
    assert message["Content-Transfer-Encoding"] == "7bit"
    raw = message.as_bytes().decode("ascii")
    assert f"  {ORIGIN}{confirm_path(message)}\n" in raw.replace("\r\n", "\n")


def test_staff_searching_an_address_never_stored_see_its_waiting_request(
    client, sender, relay, sign_in
):
    links = mint(client, sender, "li@example.ca")
    save(client, links["prefs"], receive=["email_marketing"])
    staff_client, token = sign_in("alice")
    found = staff_client.post("/admin/search", data={"email": "li@example.ca", "csrf_token": token})
    assert found.status_code == 404
    page = re.sub(r"\s+", " ", found.get_data(as_text=True))
    assert "Waiting for the mailbox to confirm" in page
    assert "mail sent 2026-11-29 12:00:00 UTC" in page


def test_a_made_up_answer_in_the_query_never_shows_an_unconfirmed_opt_in_as_done(
    client, sender, session, relay
):
    links = mint(client, sender, "jane@example.com")
    client.post(links["prefs"], data={"action": "opt_out_all"})
    save(client, links["prefs"], receive=["email_marketing"])
    confirm = confirm_path(relay.messages[-1])
    page = client.get(f"{confirm}?done=confirmed&on=email_marketing").get_data(as_text=True)
    assert "Thank you: confirmed" not in page
    assert "Yes, send me this" in page
    assert [e.action for e in events(session)] == ["opted_out"]
