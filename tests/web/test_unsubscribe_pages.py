"""The unsubscribe page and RFC 8058 one-click: GET shows, POST acts, scanners
change nothing, bad links say how else to opt out, and public pages are limited."""

from __future__ import annotations

import logging
import os
import re
import secrets
import threading
import time
from dataclasses import replace
from urllib.parse import urlsplit

import pytest
import redis
from prometheus_client import REGISTRY
from seeding import fold_one_clicks
from sqlalchemy import select

from suppression.config.settings import LinkSettings
from suppression.services.consents.alarms import list_alarms
from suppression.services.consents.evidence import open_evidence
from suppression.store.models import (
    Block,
    ConsentEvent,
    ConsentState,
    Subject,
    UnsubscribeAlarm,
    UnsubscribeTally,
)
from suppression.web import ratelimit

ORIGIN = "https://optout.example.com"
MAILBOX = "unsubscribe@example.com"
GENEROUS = LinkSettings(page_rate_limit="100000 per minute")
ONE_CLICK = {"List-Unsubscribe": "One-Click"}
STATE_TABLES = (Subject, ConsentEvent, ConsentState, Block, UnsubscribeTally, UnsubscribeAlarm)


@pytest.fixture
def settings(make_settings):
    return replace(
        make_settings(), public_base_url=ORIGIN, unsubscribe_mailbox=MAILBOX, links=GENEROUS
    )


def mint(client, headers, email, **fields):
    response = client.post(
        "/v1/unsubscribe-links", json={"email": email, **fields}, headers=headers
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def path_of(url: str) -> str:
    return urlsplit(url).path


def decision(client, headers, email, purpose="email_marketing"):
    response = client.post(
        "/v1/checks?detail=all", json={"purpose": purpose, "addresses": [email]}, headers=headers
    )
    result = response.get_json()["results"][0]
    return result["sendable"], result["reason"]


def snapshot(session) -> dict[str, list[tuple]]:
    """Every row of every table the pages could write, to compare before and after."""
    session.expire_all()
    state = {}
    for model in STATE_TABLES:
        columns = list(model.__table__.columns)
        keys = list(model.__table__.primary_key.columns)
        rows = session.execute(select(*columns).order_by(*keys)).all()
        state[model.__tablename__] = [tuple(row) for row in rows]
    session.rollback()
    return state


def events(session):
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.rollback()
    return found


def multipart_one_click(boundary: str = "----gmail-one-click") -> tuple[bytes, str]:
    """The body a mailbox provider sends for RFC 8058 one-click, as multipart/form-data."""
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="List-Unsubscribe"\r\n\r\n'
        "One-Click\r\n"
        f"--{boundary}--\r\n"
    ).encode()
    return body, f"multipart/form-data; boundary={boundary}"


def test_the_page_names_the_masked_address_and_asks_for_confirmation(client, sender):
    link = mint(client, sender, "jane.doe@example.com")
    response = client.get(path_of(link["url"]))
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "j***@example.com" in page
    assert "jane.doe" not in page
    assert "Unsubscribe from marketing email?" in page
    assert 'method="post"' in page
    assert "<script" not in page
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in response.headers


def test_head_answers_like_get_without_a_body(client, sender):
    link = mint(client, sender, "jane.doe@example.com")
    response = client.head(path_of(link["url"]))
    assert response.status_code == 200
    assert response.data == b""


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
@pytest.mark.parametrize("encoding", ["form-urlencoded", "multipart"])
def test_one_click_opts_out_and_answers_200_without_redirect_or_cookie(
    app, client, sender, session, encoding
):
    link = mint(client, sender, "jane.doe@example.com", campaign="nov-news")
    assert decision(client, sender, "jane.doe@example.com") == (True, None)
    provider = app.test_client(use_cookies=False)
    if encoding == "multipart":
        body, content_type = multipart_one_click()
        response = provider.post(path_of(link["url"]), data=body, content_type=content_type)
    else:
        response = provider.post(path_of(link["url"]), data=ONE_CLICK)
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert len(response.data) < 100
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")
    fold_one_clicks(app)
    [event] = events(session)
    assert (event.action, event.purpose, event.source) == (
        "opted_out",
        "email_marketing",
        "one_click",
    )
    assert event.campaign == "nov-news"
    assert event.ip == "127.0.0.1"


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_the_event_records_ip_and_user_agent(client, sender, session, vault):
    link = mint(client, sender, "jane.doe@example.com")
    client.post(
        path_of(link["url"]),
        data=ONE_CLICK,
        headers={"User-Agent": "GoogleOneClick/1.0"},
        environ_base={"REMOTE_ADDR": "203.0.113.9"},
    )
    fold_one_clicks(client.application)
    [event] = events(session)
    assert (event.ip, event.user_agent) == ("203.0.113.9", "GoogleOneClick/1.0")
    assert event.actor == "recipient"
    assert (
        open_evidence(vault, event.evidence_sealed).value["link_issued_at"]
        == "2026-11-29T12:00:00Z"
    )


def test_the_page_form_opts_out_and_shows_a_confirmation(client, sender, session):
    link = mint(client, sender, "jane.doe@example.com", campaign="nov-news")
    posted = client.post(path_of(link["url"]), data={"action": "unsubscribe"})
    # Post/redirect/get: the answer is a page of its own, with no address in its URL.
    assert posted.status_code == 303
    location = urlsplit(posted.headers["Location"])
    assert (location.path, location.query) == (path_of(link["url"]), "done=unsubscribed")
    response = client.get(posted.headers["Location"])
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "You are unsubscribed" in page
    assert "j***@example.com" in page
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")
    [event] = events(session)
    assert (event.source, event.campaign) == ("unsubscribe_page", "nov-news")


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_repeating_the_unsubscribe_is_harmless(client, sender, session):
    link = mint(client, sender, "jane.doe@example.com")
    for _ in range(3):
        assert client.post(path_of(link["url"]), data=ONE_CLICK).status_code == 200
    again = client.post(path_of(link["url"]), data={"action": "unsubscribe"}, follow_redirects=True)
    assert again.status_code == 200
    assert "unsubscribed already" in again.get_data(as_text=True)
    assert len(events(session)) == 1
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_an_address_never_seen_before_becomes_a_suppressed_subject(client, sender, session):
    link = mint(client, sender, "new.person@example.org")
    assert snapshot(session)["subjects"] == []
    client.post(path_of(link["url"]), data=ONE_CLICK)
    fold_one_clicks(client.application)
    assert len(snapshot(session)["subjects"]) == 1
    assert decision(client, sender, "new.person@example.org") == (False, "opted_out")


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_link_for_all_purposes_opts_out_of_everything(client, sender):
    link = mint(client, sender, "jane.doe@example.com", purpose="all")
    client.post(path_of(link["url"]), data=ONE_CLICK)
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")
    assert decision(client, sender, "jane.doe@example.com", "ad_audiences") == (
        False,
        "opted_out",
    )


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_link_for_one_purpose_leaves_the_others(client, sender):
    link = mint(client, sender, "jane.doe@example.com", purpose="ad_audiences")
    client.post(path_of(link["url"]), data=ONE_CLICK)
    assert decision(client, sender, "jane.doe@example.com", "ad_audiences")[1] == "opted_out"
    assert decision(client, sender, "jane.doe@example.com") == (True, None)


def test_a_post_that_is_neither_one_click_nor_the_form_changes_nothing(client, sender, session):
    link = mint(client, sender, "jane.doe@example.com")
    before = snapshot(session)
    for data in ({}, {"List-Unsubscribe": "Yes"}, {"action": "something"}):
        response = client.post(path_of(link["url"]), data=data)
        assert response.status_code == 400
        assert "Nothing was changed" in response.get_data(as_text=True)
    assert snapshot(session) == before


@pytest.mark.committed  # an erasure: its WAL checkpoint's own connection
def test_an_erased_subject_is_answered_but_nothing_about_it_is_stored(
    client, sender, session, admin
):
    link = mint(client, sender, "gone@example.com")
    client.post(
        "/v1/consents",
        json={
            "email": "gone@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "signup",
        },
        headers=sender,
    )
    erased = client.post(
        "/v1/subjects/erase", json={"email": "gone@example.com", "reason": "request"}, headers=admin
    )
    assert erased.status_code == 200, erased.get_json()
    before = snapshot(session)
    assert client.post(path_of(link["url"]), data=ONE_CLICK).status_code == 200
    assert snapshot(session) == before
    assert decision(client, sender, "gone@example.com") == (False, "erased")


@pytest.mark.parametrize("damage", ["flip", "truncate", "extend", "garbage"])
def test_a_changed_link_answers_400_says_how_else_to_opt_out_and_records_nothing(
    client, sender, session, damage
):
    token = path_of(mint(client, sender, "jane.doe@example.com")["url"]).rsplit("/", 1)[1]
    changed = {
        "flip": token[:20] + ("A" if token[20] != "A" else "B") + token[21:],
        "truncate": token[:-6],
        "extend": token + "AAAA",
        "garbage": "not-a-token",
    }[damage]
    before = snapshot(session)
    for method, path, data in (
        ("get", f"/u/{changed}", None),
        ("head", f"/u/{changed}", None),
        ("post", f"/u/{changed}", ONE_CLICK),
        ("post", f"/u/{changed}", {"action": "unsubscribe"}),
        ("get", f"/preferences/{changed}", None),
        ("post", f"/preferences/{changed}", {"action": "opt_out_all"}),
    ):
        response = getattr(client, method)(path, data=data)
        assert response.status_code == 400, (method, path)
        assert response.mimetype == "text/html"
        if method != "head":
            page = response.get_data(as_text=True)
            assert MAILBOX in page
            assert "example.com" not in page.replace(MAILBOX, "")
            assert "This link does not work" in page
    assert snapshot(session) == before


def test_an_expired_link_says_so_and_records_nothing(client, sender, session, clock):
    link = mint(client, sender, "jane.doe@example.com")
    clock.advance(days=181)
    response = client.post(path_of(link["url"]), data=ONE_CLICK)
    assert response.status_code == 400
    assert "This link has expired" in response.get_data(as_text=True)
    assert events(session) == []


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_link_still_works_after_180_days(client, sender, clock):
    link = mint(client, sender, "jane.doe@example.com")
    clock.advance(days=180)
    assert client.post(path_of(link["url"]), data=ONE_CLICK).status_code == 200


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
@pytest.mark.slow
def test_gmail_style_one_click_unsubscribes_and_a_scanner_changes_nothing(
    app, client, sender, session
):
    """Done when: a mail with the minted headers, replayed the way Gmail does one-click,
    unsubscribes the address, the next check answers opted_out, and a scanner that
    GETs and HEADs every link a thousand times changes nothing."""
    # The mail goes to someone the store knows, opted in: a scanner must not flip that.
    client.post(
        "/v1/consents",
        json={
            "email": "known@example.com",
            "purpose": "email_marketing",
            "status": "opted_in",
            "source": "signup_form",
        },
        headers=sender,
    )
    mail = mint(client, sender, "known@example.com", campaign="2026-11-news")
    scanner = app.test_client(use_cookies=False)
    before = snapshot(session)
    for path in (path_of(mail["url"]), path_of(mail["preferences_url"])):
        for _ in range(1000):
            assert scanner.get(path, headers={"User-Agent": "SafeLinks"}).status_code == 200
            assert scanner.head(path, headers={"User-Agent": "SafeLinks"}).status_code == 200
    assert snapshot(session) == before
    assert decision(client, sender, "known@example.com") == (True, None)

    # The mailbox provider reads the headers and POSTs the RFC 8058 body to the
    # one HTTPS URI: multipart/form-data, no cookies, no context.
    headers = mail["headers"]
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    [https_uri] = re.findall(r"<(https://[^>]+)>", headers["List-Unsubscribe"])
    token = https_uri.rsplit("/", 1)[1]
    assert f"<mailto:{MAILBOX}?subject=unsubscribe%20{token}>" in headers["List-Unsubscribe"]
    body, content_type = multipart_one_click()
    provider = app.test_client(use_cookies=False)
    response = provider.post(
        path_of(https_uri),
        data=body,
        content_type=content_type,
        headers={"User-Agent": "Mozilla/5.0 (compatible; Google-One-Click)"},
    )
    assert response.status_code == 200
    assert "Location" not in response.headers
    assert "Set-Cookie" not in response.headers
    assert decision(client, sender, "known@example.com") == (False, "opted_out")


def test_page_views_are_rate_limited_with_a_plain_429_page(make_settings, sender_for, session):
    limited = replace(
        make_settings(),
        unsubscribe_mailbox=MAILBOX,
        links=LinkSettings(page_rate_limit="5 per minute"),
    )
    client, sender = sender_for(limited)
    path = path_of(mint(client, sender, "jane.doe@example.com")["url"])
    answers = [client.get(path).status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    response = client.get(path)
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert int(response.headers["Retry-After"]) > 0
    page = response.get_data(as_text=True)
    assert "Too many requests" in page
    assert MAILBOX in page
    # Bad tokens count too, and another client address has its own allowance.
    assert client.get("/u/garbage").status_code == 429
    other = client.get(path, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200
    # The API is not limited by the page limit.
    assert (
        client.post("/v1/checks", json={"addresses": ["a@example.com"]}, headers=sender).status_code
        == 200
    )


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_one_click_posts_have_their_own_higher_limit(make_settings, sender_for, session):
    limited = replace(
        make_settings(),
        links=LinkSettings(page_rate_limit="2 per minute", one_click_rate_limit="4 per minute"),
    )
    client, sender = sender_for(limited)
    paths = [path_of(mint(client, sender, f"user{i}@example.com")["url"]) for i in range(5)]
    assert [client.get(paths[0]).status_code for _ in range(3)] == [200, 200, 429]
    answers = [client.post(path, data=ONE_CLICK).status_code for path in paths]
    assert answers == [200, 200, 200, 200, 429]
    fold_one_clicks(client.application)
    assert len(events(session)) == 4


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_the_one_click_body_on_other_pages_counts_against_the_page_limit(
    make_settings, sender_for, session
):
    limited = replace(
        make_settings(),
        links=LinkSettings(page_rate_limit="2 per minute", one_click_rate_limit="100 per minute"),
    )
    client, sender = sender_for(limited)
    link = mint(client, sender, "jane.doe@example.com")
    preferences = path_of(link["preferences_url"])
    # Only /u/<token> takes one-clicks: the body elsewhere is a page request.
    answers = [client.post(preferences, data=ONE_CLICK).status_code for _ in range(3)]
    assert answers == [400, 400, 429]
    other = {"REMOTE_ADDR": "198.51.100.7"}
    answers = [
        client.post("/confirm/made-up", data=ONE_CLICK, environ_base=other).status_code
        for _ in range(3)
    ]
    assert answers == [400, 400, 429]
    assert events(session) == []


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_one_clicks_with_made_up_tokens_are_counted_and_answered_429_past_the_limit(
    make_settings, sender_for, session
):
    limited = replace(
        make_settings(),
        links=LinkSettings(page_rate_limit="100 per minute", one_click_rate_limit="3 per minute"),
    )
    client, sender = sender_for(limited)
    forged = [f"/u/AgE{secrets.token_urlsafe(48)}" for _ in range(4)]
    answers = [client.post(path, data=ONE_CLICK).status_code for path in forged]
    assert answers == [400, 400, 400, 429]
    # The flood spent this address's one-click budget, and only this address's.
    real = path_of(mint(client, sender, "jane.doe@example.com")["url"])
    assert client.post(real, data=ONE_CLICK).status_code == 429
    assert events(session) == []
    other = {"REMOTE_ADDR": "198.51.100.7"}
    assert client.post(real, data=ONE_CLICK, environ_base=other).status_code == 200
    fold_one_clicks(client.application)
    assert len(events(session)) == 1


def alarms(session, limit: int = 50):
    """list_alarms, in a transaction that ends at once (SQLite: no lock held)."""
    session.expire_all()
    found = list_alarms(session, limit)
    session.rollback()
    return found


def alarm_count() -> float:
    return REGISTRY.get_sample_value("suppression_unsubscribe_alarms_total") or 0.0


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_many_unsubscribes_from_one_domain_and_campaign_raise_one_alarm(
    make_settings, sender_for, session, clock, caplog
):
    alarmed = replace(
        make_settings(),
        links=LinkSettings(
            page_rate_limit="100000 per minute", alarm_threshold=5, alarm_window_minutes=10
        ),
    )
    client, sender = sender_for(alarmed)
    paths = [
        path_of(mint(client, sender, f"worker{i}@bigcorp.example", campaign="nov")["url"])
        for i in range(9)
    ]
    other = path_of(mint(client, sender, "someone@elsewhere.example", campaign="nov")["url"])
    raised_before = alarm_count()
    with caplog.at_level(logging.WARNING, logger="suppression"):
        for path in paths[:5]:
            client.post(path, data=ONE_CLICK)
            clock.advance(minutes=1)
        fold_one_clicks(client.application)
        assert alarms(session) == []  # five is the threshold, not more than it
        client.post(other, data=ONE_CLICK)
        for path in paths[5:]:
            client.post(path, data=ONE_CLICK)
            clock.advance(seconds=30)
        fold_one_clicks(client.application)
    [alarm] = alarms(session)
    assert (alarm.domain, alarm.campaign) == ("bigcorp.example", "nov")
    assert alarm.count == 9
    assert alarm.first_at < alarm.last_at
    assert alarm_count() == raised_before + 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "bigcorp.example" in warnings[0]
    assert "worker" not in warnings[0]


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_unsubscribes_spread_over_more_than_the_window_raise_no_alarm(
    make_settings, sender_for, session, clock
):
    spread = replace(
        make_settings(),
        links=LinkSettings(alarm_threshold=3, alarm_window_minutes=10),
    )
    client, sender = sender_for(spread)
    for i in range(8):
        client.post(
            path_of(mint(client, sender, f"p{i}@bigcorp.example", campaign="nov")["url"]),
            data=ONE_CLICK,
        )
        clock.advance(minutes=4)
    assert alarms(session) == []
    # Old tallies are pruned as new unsubscribes arrive: only the window is kept.
    assert len(snapshot(session)["unsubscribe_tallies"]) <= 3


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_later_burst_of_the_same_campaign_raises_a_new_alarm(
    make_settings, sender_for, session, clock
):
    bursty = replace(
        make_settings(),
        links=LinkSettings(
            page_rate_limit="100000 per minute", alarm_threshold=2, alarm_window_minutes=5
        ),
    )
    client, sender = sender_for(bursty)
    for burst in range(2):
        for i in range(4):
            path = path_of(
                mint(client, sender, f"b{burst}-{i}@corp.example", campaign="nov")["url"]
            )
            client.post(path, data=ONE_CLICK)
        fold_one_clicks(client.application)  # the worker's pass, within the hour
        clock.advance(hours=1)
    raised = alarms(session)
    assert [alarm.count for alarm in raised] == [4, 4]
    assert raised[0].raised_at > raised[1].raised_at  # newest first
    assert len(alarms(session, limit=1)) == 1


def test_the_page_renders_in_chromium_and_the_confirmation_suppresses_the_subject(
    live_server, page, screenshot, client, sender
):
    link = mint(client, sender, "jane.doe@example.com", campaign="nov-news")
    page.goto(live_server + path_of(link["url"]))
    assert page.locator("h1").inner_text() == "Unsubscribe from marketing email?"
    assert page.get_by_text("j***@example.com").is_visible()
    screenshot(page, "unsubscribe-confirm")
    page.get_by_role("button", name="Unsubscribe").click()
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert page.get_by_role("status").is_visible()
    screenshot(page, "unsubscribe-done")
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")


def test_without_redis_the_limits_count_in_memory(app):
    storage = app.extensions[ratelimit.EXTENSION].limiter.storage
    assert isinstance(storage, ratelimit.SweptMemoryStorage)


def test_the_memory_counts_start_no_thread_and_are_swept_after_they_expire(monkeypatch):
    storage = ratelimit.SweptMemoryStorage()
    started: list[threading.Thread] = []
    monkeypatch.setattr(threading.Thread, "start", lambda thread: started.append(thread))
    for _ in range(50):
        storage.incr("client-a", 0.001)
    assert storage.get("client-a") == 50
    assert started == []  # MemoryStorage starts a timer thread after a hit
    time.sleep(0.01)  # client-a's count expires
    storage.incr("client-b", 60)
    assert "client-a" in storage.storage  # not swept within the second
    storage.swept_at -= ratelimit.SWEEP_SECONDS  # a second later
    storage.incr("client-b", 60)
    assert "client-a" not in storage.storage  # swept by the hit: its memory is freed
    assert (storage.get("client-a"), storage.get("client-b")) == (0, 2)


def test_with_redis_url_every_app_shares_one_count(make_settings, sender_for):
    url = "redis://127.0.0.1:6379/15"
    try:
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    except redis.exceptions.ConnectionError:
        pytest.skip("no Redis on 127.0.0.1:6379")
    shared = replace(
        make_settings(), redis_url=url, links=LinkSettings(page_rate_limit="3 per minute")
    )
    first, _ = sender_for(shared)
    second, sender = sender_for(shared)  # the key of the last app built
    assert first.application.extensions[ratelimit.EXTENSION].limiter.storage.check()
    path = path_of(mint(first, sender, "jane@example.com")["url"])
    # A client address of its own, so that earlier runs' counts do not matter.
    peer = {
        "REMOTE_ADDR": f"10.{os.getpid() % 250}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"
    }
    answers = [
        (first if i % 2 else second).get(path, environ_base=peer).status_code for i in range(4)
    ]
    assert answers == [200, 200, 200, 429]


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_the_one_click_body_under_another_content_type_still_unsubscribes(client, sender):
    link = mint(client, sender, "jane.doe@example.com")
    response = client.post(
        path_of(link["url"]), data=b"List-Unsubscribe=One-Click", content_type="text/plain"
    )
    assert response.status_code == 200
    assert decision(client, sender, "jane.doe@example.com") == (False, "opted_out")


@pytest.mark.committed  # a one-click: the folding thread; PostgreSQL's intake engine
def test_a_one_click_goes_through_when_the_limit_storage_is_down(
    make_settings, sender_for, session
):
    # Nothing listens on port 9: every hit on the limit fails at once.
    down = replace(make_settings(), redis_url="redis://127.0.0.1:9/0")
    client, sender = sender_for(down)
    path = path_of(mint(client, sender, "jane.doe@example.com")["url"])
    assert client.post(path, data=ONE_CLICK).status_code == 200
    fold_one_clicks(client.application)
    assert len(events(session)) == 1
