"""The dashboard page: counts, the EEA share, the opt-out chart and the alarms."""

import re
from datetime import timedelta
from functools import partial

from seeding import record

from suppression.store.models import UnsubscribeAlarm

consent = partial(record, purpose="all", source="email_request")


def text_of(response):
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_the_dashboard_counts_states_per_purpose_and_blocks(sign_in, sender):
    client, _token = sign_in()
    consent(client, sender, email="a@example.com")
    consent(client, sender, email="b@example.com", purpose="email_marketing")
    consent(client, sender, email="c@example.com", purpose="email_marketing", status="opted_in")
    client.post("/v1/blocks", json={"email": "d@example.com", "kind": "complaint"}, headers=sender)
    html = text_of(client.get("/admin/dashboard"))
    assert "<dt>Subjects stored</dt><dd>4</dd>" in html
    assert '<th scope="row">Email marketing</th> <td>1</td> <td>1</td>' in html
    assert '<th scope="row">All marketing</th> <td>0</td> <td>1</td>' in html
    assert '<th scope="row">complaint</th><td>1</td>' in html


def test_the_dashboard_gives_the_eea_share_and_says_what_it_counts(sign_in, sender):
    client, _token = sign_in()
    consent(client, sender, email="a@example.com", country="DE")
    consent(client, sender, email="b@example.com", country="US")
    consent(client, sender, email="c@example.com", country="US")
    consent(client, sender, email="d@firma.de")
    html = text_of(client.get("/admin/dashboard"))
    assert "<dt>EEA share</dt><dd>33.3 %</dd>" in html
    assert "<strong>1</strong> of 3 subjects with a stored country are in the EEA" in html
    assert "1 subject without one" in html
    assert "is not counted here" in html


def test_the_chart_is_inline_svg_with_a_bar_per_day_and_a_table(sign_in, sender, clock):
    client, _token = sign_in()
    consent(client, sender, email="a@example.com")
    consent(client, sender, email="b@example.com", occurred_at="2026-11-27T08:00:00Z")
    consent(client, sender, email="c@example.com", occurred_at="2026-11-27T09:00:00Z")
    response = client.get("/admin/dashboard")
    html = response.get_data(as_text=True)
    # Two drawings (wide, and a phone's with fewer labels), a bar per day in each.
    assert html.count('<rect class="bar"') == 60
    wide, narrow = (
        html.split('<svg class="chart-wide"')[1],
        html.split('<svg class="chart-narrow"')[1],
    )
    assert wide.split("</svg>")[0].count('<text class="tick" x=') > narrow.split("</svg>")[0].count(
        '<text class="tick" x='
    )
    assert html.count("<title>2026-11-27: 2</title>") == 2
    assert "<title>2026-11-29: 1</title>" in html
    assert "<title>2026-10-31: 0</title>" in html
    # One summary, the picture's name: no <desc> read again as its description.
    summary = "3 people opted out in 30 days; at most 2 on one day."
    assert html.count(f'role="img" aria-label="{summary}') == 2
    assert "<desc" not in html
    assert "<td>2026-11-27</td><td>2</td>" in html
    assert "<dt>Opt-outs, last 30 days</dt><dd>3</dd>" in text_of(response)
    assert "<script" not in html
    assert "http://" not in html.split("<body")[1].replace('xmlns="http://www.w3.org/2000/svg"', "")


def test_the_dashboard_lists_mass_unsubscribe_alarms(sign_in, session, clock):
    client, _token = sign_in()
    session.add(
        UnsubscribeAlarm(
            domain="bigcorp.example",
            campaign="black-friday",
            count=240,
            first_at=clock() - timedelta(minutes=4),
            last_at=clock(),
            raised_at=clock() - timedelta(minutes=3),
        )
    )
    session.commit()
    html = text_of(client.get("/admin/dashboard"))
    assert (
        '<td data-label="Domain">bigcorp.example</td> <td data-label="Campaign">black-friday</td> '
        '<td data-label="Unsubscribes">240</td>'
    ) in html
    assert "2026-11-29 11:57:00 UTC" in html


def test_a_quiet_dashboard_says_so(sign_in):
    client, _token = sign_in()
    html = text_of(client.get("/admin/dashboard"))
    assert "No alarm has been raised." in html
    assert "No subject has a stored country yet." in html
    assert html.count('<rect class="bar"') == 60  # the wide drawing and the phone's


def test_the_dashboard_counts_opt_outs_and_feedback_by_channel(sign_in, sender):
    client, _token = sign_in()
    consent(client, sender, email="a@example.com", source="one_click")
    consent(client, sender, email="b@example.com", source="one_click")
    consent(client, sender, email="c@example.com", source="mailto")
    consent(client, sender, email="d@example.com", source="partner-crm")
    bounce = {"email": "e@example.com", "kind": "hard_bounce", "source": "sendgrid"}
    client.post("/v1/blocks", json=bounce, headers=sender)
    complaint = {"email": "f@example.com", "kind": "complaint", "source": "sendgrid"}
    client.post("/v1/blocks", json=complaint, headers=sender)
    html = text_of(client.get("/admin/dashboard"))
    table = html[html.index('id="channels-title"') :]
    rows = re.findall(
        r'<th scope="row">([^<]+)</th> <td>(\d+)</td> <td>(\d+)</td> <td>(\d+)</td>', table
    )
    assert rows[:4] == [
        ("One-click unsubscribe (RFC 8058)", "2", "0", "0"),
        ("Unsubscribe mail (List-Unsubscribe mailto)", "1", "0", "0"),
        ("Other (a source the caller named)", "1", "0", "0"),
        ("SendGrid webhook", "0", "1", "1"),
    ]


def test_the_channel_table_says_when_there_is_nothing(sign_in):
    client, _token = sign_in()
    html = text_of(client.get("/admin/dashboard"))
    assert "No opt-out, hard bounce or complaint in the last 30 days." in html
