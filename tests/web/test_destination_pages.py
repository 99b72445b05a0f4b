"""The staff page of destination status, and a subject's destination history."""

import re
from datetime import timedelta
from functools import partial

from seeding import record

from suppression.connectors.settings import destinations_from_env
from suppression.services.consents.events import EventContext
from suppression.services.consents.intake import accept_one_clicks, one_click_row
from suppression.services.destinations.registry import register_destinations
from suppression.services.destinations.rows import Done
from suppression.services.destinations.settle import settle_done
from suppression.store.models.destinations import OutboxRow

META = {"META_ACCESS_TOKEN": "t", "META_AUDIENCE_IDS": "1"}


def text_of(response):
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


opt_out = partial(record, purpose="all", source="email_request")


def register_meta(session, clock):
    register_destinations(session, destinations_from_env(META), {}, clock())
    session.commit()


def test_the_destination_page_shows_queue_health_and_the_deadline_alarm(
    client, sign_in, sender, session, clock
):
    register_meta(session, clock)
    opt_out(client, sender, "jane@example.com")
    session.query(OutboxRow).update({"last_error": "Meta: HTTP 503"})
    session.commit()
    clock.advance(hours=25)
    client, _token = sign_in()
    page = client.get("/admin/destinations")
    assert page.status_code == 200
    text = text_of(page)
    assert "Destinations" in text
    assert "meta custom audience" in text
    assert "1 waiting longer than 24 h" in text
    assert "jane" not in text
    assert "Retry parked" not in text  # staff see no admin action


def test_an_admin_retries_parked_rows_from_the_page(sign_in, sender, session, clock, csrf_from):
    register_meta(session, clock)
    client, _token = sign_in("root", "admin")
    opt_out(client, sender, "jane@example.com")
    session.query(OutboxRow).update({"failed_at": clock(), "attempts": 8})
    session.commit()
    page = client.get("/admin/destinations")
    assert "Retry parked" in page.get_data(as_text=True)
    response = client.post(
        "/admin/destinations/retry", data={"destination": "meta", "csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    assert "1 parked row for meta queued again" in text_of(client.get("/admin/destinations"))
    session.expire_all()
    assert session.query(OutboxRow).filter(OutboxRow.failed_at.is_not(None)).count() == 0


def test_a_staff_member_may_not_retry_parked_rows(sign_in):
    client, token = sign_in()
    response = client.post(
        "/admin/destinations/retry", data={"destination": "meta", "csrf_token": token}
    )
    assert response.status_code == 403


def test_the_subject_page_shows_the_subject_s_destination_history(sign_in, sender, session, clock):
    register_meta(session, clock)
    client, _token = sign_in()
    opt_out(client, sender, "jane@example.com")
    row = session.query(OutboxRow).one()
    settle_done(
        session,
        "meta",
        "t",
        clock(),
        clock(),
        [Done(row.subject_id, (row.id,), True, "opted_out", "suppress", "confirmed")],
    )
    session.commit()
    page = client.get(f"/admin/subjects/{row.subject_id}")
    assert page.status_code == 200
    text = text_of(page)
    assert "suppressed (opted_out)" in text
    assert "Every push a destination confirmed (1)" in text


def test_an_admin_sees_destination_status_in_the_browser(
    client, sender, session, clock, make_staff_user, live_server, page, screenshot
):
    register_meta(session, clock)
    opt_out(client, sender, "jane@example.com")
    session.query(OutboxRow).update({"failed_at": clock(), "last_error": "Meta: HTTP 503"})
    session.commit()
    make_staff_user("ada", "admin", "a passphrase for the browser test")
    page.goto(f"{live_server}/admin/")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("a passphrase for the browser test")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Destinations").click()
    assert page.get_by_role("heading", name="Destinations").is_visible()
    assert page.get_by_role("button", name="Retry parked").is_visible()
    screenshot(page, "staff-destinations")
    page.get_by_role("button", name="Retry parked").click()
    assert page.get_by_text("1 parked row for meta queued again.").is_visible()


def test_the_destination_page_shows_one_clicks_the_worker_has_not_folded(
    sign_in, session, clock, vault, app
):
    policy = app.extensions["suppression"].settings.policy

    def click(address, when):
        ctx = EventContext("recipient", "one_click", when, when)
        accept_one_clicks(session, [one_click_row(vault, policy, address, "all", ctx)])
        session.commit()

    click("jane@example.com", clock())
    client, _token = sign_in()
    text = text_of(client.get("/admin/destinations"))
    assert "One-click unsubscribes waiting for the sync worker" in text
    assert ": 1 (the oldest since" in text
    assert "Is the sync worker running?" not in text
    assert "jane" not in text

    click("john@example.com", clock() - timedelta(hours=25))  # past SYNC_DEADLINE_HOURS
    text = text_of(client.get("/admin/destinations"))
    assert "<strong>One-click unsubscribes</strong>: 2 waiting to be recorded" in text
    assert "Is the sync worker running?" in text
