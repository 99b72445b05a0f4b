"""POST /v1/inbound/ses: Amazon SES feedback delivered by SNS, signed the SNS way
(version 1 and 2) by a certificate of a test CA served from loopback HTTPS
(tests/sns_fake.py). Permanent bounces and complaints become blocks with source
`ses`; anything unsigned, forged, stale, of another topic or certified by anyone
but SNS is refused and records nothing; a retry is a duplicate."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
import sns_fake
from prometheus_client import REGISTRY
from sns_fake import TOPIC_ARN, FakeSns
from sqlalchemy import func, select

from suppression.config.feedback import FeedbackSettings
from suppression.connectors.sns_certificates import SnsCertificates
from suppression.domain.sns import MessageType
from suppression.services.consents.evidence import open_evidence
from suppression.store.models import ConsentEvent, FeedbackReceipt

PATH = "/v1/inbound/ses"
JANE, MARY, RICHARD = "jane@example.com", "mary@example.com", "richard@example.com"


@pytest.fixture(scope="module")
def sns():
    fake = FakeSns()
    yield fake
    fake.close()


@pytest.fixture
def settings(make_settings, sns):
    sns.reset()
    feedback = FeedbackSettings(
        ses_topic_arns=(TOPIC_ARN,), sns_ca_file=sns.ca_file, sns_test_host=sns.host
    )
    return replace(make_settings(), feedback=feedback)


def post(client, document: dict[str, str], **extra_headers: str):
    headers = {**sns_fake.headers(document), **extra_headers}
    return client.post(PATH, data=sns_fake.body(document), headers=headers)


def events(session) -> list[ConsentEvent]:
    session.expire_all()
    found = list(session.scalars(select(ConsentEvent).order_by(ConsentEvent.id)))
    session.rollback()
    return found


def receipts(session) -> int:
    count = session.scalar(select(func.count()).select_from(FeedbackReceipt))
    session.rollback()
    return count


def evidence(vault, event: ConsentEvent) -> dict:
    return open_evidence(vault, event.evidence_sealed).value


def counted(outcome: str) -> float:
    labels = {"platform": "ses", "outcome": outcome}
    return REGISTRY.get_sample_value("suppression_webhook_events_total", labels) or 0.0


def decision(client, headers, email):
    body = {"purpose": "email_marketing", "addresses": [email]}
    [result] = client.post("/v1/checks?detail=all", json=body, headers=headers).get_json()[
        "results"
    ]
    return result["sendable"], result["reason"]


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_permanent_bounce_blocks_the_recipient_as_a_hard_bounce(
    client, sns, clock, session, vault, sender, version
):
    document = sns.notification(sns_fake.bounce(JANE), clock(), version=version)
    response = post(client, document)
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "received": 1,
        "recorded": 1,
        "unchanged": 0,
        "duplicate": 0,
        "ignored": 0,
        "subscription": None,
    }
    [event] = events(session)
    assert (event.action, event.source, event.actor) == ("hard_bounce", "ses", "ses")
    sealed = evidence(vault, event)
    assert sealed["platform_event_id"] == f"{document['MessageId']}/1"
    assert sealed["platform_event_type"] == "Bounce"
    assert sealed["bounce_type"] == "Permanent"
    assert sealed["bounce_sub_type"] == "General"
    assert sealed["diagnostic_code"] == f"smtp; 550 5.1.1 <{JANE}>... User"
    assert sealed["feedback_id"].startswith("00000138111222aa")
    assert sealed["mail_message_id"].startswith("00000138111222aa")
    # SES's time of the bounce, not the time it arrived.
    assert event.occurred_at.year == 2016
    assert decision(client, sender, JANE) == (False, "bounced")


def test_staff_see_the_ses_complaint_on_the_subject(client, sns, clock, staff):
    assert post(client, sns.notification(sns_fake.complaint(RICHARD), clock())).status_code == 200
    body = {"email": RICHARD, "reason": "complaint follow-up"}
    found = client.post("/v1/subjects/lookup", json=body, headers=staff).get_json()
    assert {"kind": "complaint", "source": "ses"} in [
        {"kind": b["kind"], "source": b["source"]} for b in found["blocks"]
    ]


def test_each_bounced_recipient_is_its_own_event(client, sns, clock, session):
    document = sns.notification(sns_fake.bounce(JANE, MARY), clock())
    assert post(client, document).get_json()["recorded"] == 2
    assert [e.action for e in events(session)] == ["hard_bounce", "hard_bounce"]
    assert receipts(session) == 2


@pytest.mark.parametrize("bounce_type", ["Transient", "Undetermined"])
def test_a_bounce_that_is_not_permanent_is_ignored(client, sns, clock, session, bounce_type):
    message = sns_fake.bounce(JANE, bounce_type=bounce_type, sub_type="MailboxFull")
    response = post(client, sns.notification(message, clock()))
    assert response.status_code == 200
    assert response.get_json()["ignored"] == 1
    assert response.get_json()["recorded"] == 0
    assert events(session) == []
    assert receipts(session) == 0


@pytest.mark.parametrize("event_publishing", [False, True])
def test_a_complaint_blocks_the_recipient_as_a_complaint(
    client, sns, clock, session, vault, event_publishing
):
    message = sns_fake.complaint(RICHARD, event_publishing=event_publishing)
    document = sns.notification(message, clock(), version="1")
    assert post(client, document).get_json()["recorded"] == 1
    [event] = events(session)
    assert (event.action, event.source) == ("complaint", "ses")
    sealed = evidence(vault, event)
    assert sealed["complaint_feedback_type"] == "abuse"
    assert sealed["platform_event_type"] == "Complaint"


def test_a_delivery_notification_is_counted_and_ignored(client, sns, clock, session):
    response = post(client, sns.notification(sns_fake.delivery(JANE), clock()))
    assert response.get_json()["received"] == 1
    assert response.get_json()["ignored"] == 1
    assert events(session) == []


def test_a_retry_of_the_same_message_is_a_duplicate_and_records_nothing_again(
    client, sns, clock, session
):
    document = sns.notification(sns_fake.bounce(JANE, MARY), clock())
    assert post(client, document).get_json()["recorded"] == 2
    clock.advance(seconds=20)  # SNS's default policy retries 20 s apart
    again = post(client, document)
    assert again.status_code == 200  # so SNS stops retrying
    assert again.get_json()["duplicate"] == 2
    assert again.get_json()["recorded"] == 0
    assert len(events(session)) == 2


def test_a_subscription_confirmation_is_confirmed_at_its_subscribe_url(client, sns, clock, session):
    document = sns.subscription_confirmation(clock())
    response = post(client, document)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["subscription"] == "confirmed"
    assert response.get_json()["received"] == 0
    [query] = sns.confirmations
    assert query["Action"] == ["ConfirmSubscription"]
    assert query["TopicArn"] == [TOPIC_ARN]
    assert query["Token"] == [document["Token"]]
    assert events(session) == []


def test_a_confirmation_sns_refuses_is_answered_502_so_sns_sends_it_again(client, sns, clock):
    sns.confirm_status = 500
    response = post(client, sns.subscription_confirmation(clock()))
    assert response.status_code == 502
    assert "could not be confirmed" in response.get_json()["message"]


TOPIC_QUERY = "TopicArn=arn%3Aaws%3Asns%3Aus-west-2%3A123456789012%3AMyTopic"


@pytest.mark.parametrize(
    "subscribe_url",
    [
        f"https://sns.us-west-2.amazonaws.com.example.net/?Action=ConfirmSubscription&{TOPIC_QUERY}",
        f"https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&{TOPIC_QUERY}",
        f"https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&{TOPIC_QUERY}",
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&TopicArn=other",
    ],
)
def test_a_subscribe_url_off_the_topic_s_sns_host_is_never_fetched(
    client, sns, clock, subscribe_url
):
    document = sns.subscription_confirmation(clock(), subscribe_url=subscribe_url)
    response = post(client, document)
    assert response.status_code == 401
    assert "SubscribeURL" in response.get_json()["message"]
    assert sns.confirmations == []


def test_an_unsubscribe_confirmation_is_noted_and_nothing_is_fetched_but_the_certificate(
    client, sns, clock
):
    document = sns.subscription_confirmation(
        clock(), kind=MessageType.UNSUBSCRIBE_CONFIRMATION, version="2"
    )
    response = post(client, document)
    assert response.status_code == 200
    assert response.get_json()["subscription"] == "unsubscribed"
    assert sns.confirmations == []


def test_a_message_changed_after_signing_is_refused_and_records_nothing(
    client, sns, clock, session, admin, caplog
):
    document = sns.notification(sns_fake.bounce(JANE), clock())
    forged = {**document, "Message": sns_fake.bounce(MARY)}
    before = counted("refused")
    # An API key is no substitute for SNS's signature.
    response = post(client, forged, Authorization=admin["Authorization"])
    assert response.status_code == 401
    assert "signature does not match" in response.get_json()["message"]
    assert "SES webhook refused a request (401)" in caplog.text
    assert counted("refused") == before + 1
    assert events(session) == []
    assert receipts(session) == 0


def test_a_signature_by_another_key_of_the_same_ca_is_refused(client, sns, clock, session):
    path, _key = sns.other_certificate()
    forged = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=sns.url(path))
    assert post(client, forged).status_code == 401
    assert events(session) == []


@pytest.mark.parametrize(
    "certificate",
    ["self-signed", "expired", "not SNS"],
)
def test_a_certificate_that_is_not_sns_s_is_refused(client, sns, clock, session, certificate):
    if certificate == "self-signed":
        path, key = sns.self_signed_certificate()
    elif certificate == "expired":
        valid = (clock() - timedelta(days=400), clock() - timedelta(days=1))
        path, key = sns.other_certificate(valid=valid)
    else:
        path, key = sns.other_certificate(name="mail.example.com")
    document = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=sns.url(path), key=key)
    response = post(client, document)
    assert response.status_code == 401
    assert "certificate" in response.get_json()["message"]
    assert events(session) == []


@pytest.mark.parametrize(
    "cert_url",
    [
        "https://sns.us-west-2.amazonaws.com.example.net/SimpleNotificationService-1.pem",
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://example.com/SimpleNotificationService-1.pem",
        "https://user@sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "http://sns.us-west-2.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-west-2.amazonaws.com/?Action=Get",
    ],
)
def test_a_certificate_url_off_the_topic_s_sns_host_is_refused_unfetched(
    client, sns, clock, session, cert_url
):
    document = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=cert_url)
    response = post(client, document)
    assert response.status_code == 401
    assert "SigningCertURL" in response.get_json()["message"]
    assert sns.fetches == []
    assert events(session) == []


def test_a_plain_http_url_on_the_test_host_is_refused_too(client, sns, clock):
    cert_url = sns.cert_url.replace("https://", "http://")
    document = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=cert_url)
    assert post(client, document).status_code == 401
    assert sns.fetches == []


def test_a_topic_not_configured_is_refused_before_anything_is_fetched(client, sns, clock, session):
    other = "arn:aws:sns:us-west-2:123456789012:SomeoneElsesTopic"
    document = sns.notification(sns_fake.bounce(JANE), clock(), topic_arn=other)
    response = post(client, document)
    assert response.status_code == 403
    assert "SES_SNS_TOPIC_ARNS" in response.get_json()["message"]
    assert sns.fetches == []
    assert events(session) == []


@pytest.mark.parametrize("age", [timedelta(seconds=301), timedelta(seconds=-301)])
def test_a_message_signed_over_five_minutes_off_is_refused(client, sns, clock, session, age):
    document = sns.notification(sns_fake.bounce(JANE), clock() - age)
    response = post(client, document)
    assert response.status_code == 401
    assert "300 s" in response.get_json()["message"]
    assert events(session) == []


def test_a_retry_past_the_window_is_refused_and_the_first_delivery_stands(
    client, sns, clock, session
):
    document = sns.notification(sns_fake.bounce(JANE), clock())
    assert post(client, document).get_json()["recorded"] == 1
    clock.advance(seconds=301)
    assert post(client, document).status_code == 401
    assert len(events(session)) == 1


def test_the_certificate_is_fetched_once_for_many_messages(client, sns, clock):
    for address in (JANE, MARY, RICHARD):
        assert post(client, sns.notification(sns_fake.bounce(address), clock())).status_code == 200
    assert sns.fetches.count(sns.cert_path) == 1
    assert sns.fetches.count("/intermediate.cer") == 1


def test_an_intermediate_served_with_the_certificate_is_used_as_it_is(client, sns, clock):
    path, key = sns.chained_certificate()
    document = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=sns.url(path), key=key)
    assert post(client, document).status_code == 200
    assert sns.fetches == [path]


def test_a_cached_certificate_is_fetched_again_after_a_day(client, sns, clock):
    assert post(client, sns.notification(sns_fake.bounce(JANE), clock())).status_code == 200
    clock.advance(hours=23)
    assert post(client, sns.notification(sns_fake.bounce(MARY), clock())).status_code == 200
    assert sns.fetches.count(sns.cert_path) == 1
    clock.advance(hours=1, seconds=1)
    assert post(client, sns.notification(sns_fake.bounce(RICHARD), clock())).status_code == 200
    assert sns.fetches.count(sns.cert_path) == 2


def test_the_cache_keeps_a_bounded_number_of_certificates(sns, clock):
    certificates = SnsCertificates(sns.ca_file, max_cached=2)
    first, second, third = (sns.url(sns.other_certificate()[0]) for _ in range(3))
    for url in (first, second, third, third, first):
        certificates.public_key(url, clock())
    fetched = [path for path in sns.fetches if path.startswith("/other-")]
    # The third was kept; the first, pushed out by it, was fetched again.
    assert [sns.url(path) for path in fetched] == [first, second, third, first]


def test_a_certificate_that_cannot_be_fetched_is_a_503_sns_retries(client, sns, clock, session):
    document = sns.notification(sns_fake.bounce(JANE), clock(), cert_url=sns.url("/gone.pem"))
    response = post(client, document)
    assert response.status_code == 503
    assert events(session) == []


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"x-amz-sns-message-type": "SubscriptionConfirmation"}, 400),
        ({"x-amz-sns-message-type": ""}, 400),
    ],
)
def test_a_type_header_that_does_not_match_the_message_is_refused(
    client, sns, clock, session, change, status
):
    document = sns.notification(sns_fake.bounce(JANE), clock())
    assert post(client, document, **change).status_code == status
    assert events(session) == []


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"not json", 400),
        (b"[]", 400),
        (b'{"Type": "Notification"}', 400),
    ],
)
def test_a_body_that_is_not_an_sns_message_is_refused(client, session, body, status):
    headers = {"x-amz-sns-message-type": "Notification", "Content-Type": "text/plain"}
    response = client.post(PATH, data=body, headers=headers)
    assert response.status_code == status
    assert events(session) == []


def test_an_unsigned_message_is_refused(client, sns, clock, session):
    document = sns.notification(sns_fake.bounce(JANE), clock())
    del document["Signature"]
    assert post(client, document).status_code == 401
    assert events(session) == []


def test_a_signed_message_that_is_not_ses_json_is_a_400(client, sns, clock, session):
    response = post(client, sns.notification("Hello world!", clock(), subject="My First Message"))
    assert response.status_code == 400
    assert "not an SES notification" in response.get_json()["message"]
    assert events(session) == []


def test_the_webhook_is_off_until_a_topic_is_set(make_settings, app_on_same_database, sns, clock):
    off = app_on_same_database(make_settings()).test_client()
    response = post(off, sns.notification(sns_fake.bounce(JANE), clock()))
    assert response.status_code == 404
    assert "SES_SNS_TOPIC_ARNS" in response.get_json()["message"]
    assert sns.fetches == []


def test_a_body_over_one_mib_is_refused_unread(client, sns, session):
    body = b'{"Type": "Notification", "Message": "' + b"x" * (1024 * 1024) + b'"}'
    response = client.post(PATH, data=body, headers={"x-amz-sns-message-type": "Notification"})
    assert response.status_code == 413
    assert sns.fetches == []
    assert events(session) == []


def test_the_metric_counts_each_outcome(client, sns, clock):
    before = {o: counted(o) for o in ("recorded", "duplicate", "ignored", "refused")}
    document = sns.notification(sns_fake.bounce(JANE, MARY), clock())
    post(client, document)
    post(client, document)
    post(client, sns.notification(sns_fake.bounce(JANE, bounce_type="Transient"), clock()))
    post(client, {**document, "Message": "{}"})
    after = {o: counted(o) for o in before}
    assert after["recorded"] - before["recorded"] == 2
    assert after["duplicate"] - before["duplicate"] == 2
    assert after["ignored"] - before["ignored"] == 1
    assert after["refused"] - before["refused"] == 1
    page = client.get("/metrics").get_data(as_text=True)
    assert 'suppression_webhook_events_total{outcome="recorded",platform="ses"}' in page


def test_the_answer_and_logs_name_no_address(client, sns, clock, caplog):
    caplog.set_level("INFO", logger="suppression")
    response = post(client, sns.notification(sns_fake.bounce(JANE), clock()))
    assert JANE not in json.dumps(response.get_json())
    assert JANE not in caplog.text
