"""Amazon SNS and SES, the pure parts: the envelope, the string SNS signs, which
URLs a message may name, what an SES notification becomes, and the settings
(SNS_TEST_HOST only outside production)."""

from __future__ import annotations

import json

import pytest
from production_env import PRODUCTION_ENV

from suppression.config.feedback import feedback_from_env
from suppression.config.settings import ConfigError, Settings
from suppression.domain.feedback import MAX_DETAIL_CHARS, FeedbackAction, FeedbackRefused
from suppression.domain.feedback_ses import ses_events
from suppression.domain.sns import (
    MessageType,
    read_envelope,
    require_signing_cert_url,
    require_subscribe_url,
    sns_host,
    string_to_sign,
)

# AWS's example notification, https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
EXAMPLE = {
    "Type": "Notification",
    "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
    "TopicArn": "arn:aws:sns:us-west-2:123456789012:MyTopic",
    "Subject": "My First Message",
    "Message": "Hello world!",
    "Timestamp": "2012-05-02T00:54:06.655Z",
    "SignatureVersion": "1",
    "Signature": "EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+"
    "1fkIp9F2/LmNVKb5aFlYq+9rk9ZiPph5YlLmWsDcyC5T+Sy9/umic5S0UQc2PEtgdpVBahwNOdMW4JPwk0kAJJztnc=",
    "SigningCertURL": "https://sns.us-west-2.amazonaws.com/"
    "SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
    "UnsubscribeURL": "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn="
    "arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0-26c4-47ec-8998-413945fb5a96",
}


def envelope(**changes: object):
    document = {**EXAMPLE, **changes}
    document = {name: value for name, value in document.items() if value is not None}
    return read_envelope(json.dumps(document).encode(), str(document.get("Type")))


def test_a_notification_signs_its_fields_in_order_with_the_subject():
    assert string_to_sign(envelope()) == (
        b"Message\nHello world!\n"
        b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        b"Subject\nMy First Message\n"
        b"Timestamp\n2012-05-02T00:54:06.655Z\n"
        b"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
        b"Type\nNotification\n"
    )


def test_a_notification_without_a_subject_leaves_it_out():
    signed = string_to_sign(envelope(Subject=None))
    assert b"Subject" not in signed
    assert signed.startswith(b"Message\nHello world!\nMessageId\n")


def test_a_subscription_confirmation_signs_its_subscribe_url_and_token():
    message = envelope(
        Type="SubscriptionConfirmation",
        Subject=None,
        Token="2336412f37",
        SubscribeURL="https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription",
    )
    assert message.type is MessageType.SUBSCRIPTION_CONFIRMATION
    assert string_to_sign(message) == (
        b"Message\nHello world!\n"
        b"MessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n"
        b"SubscribeURL\nhttps://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription\n"
        b"Timestamp\n2012-05-02T00:54:06.655Z\n"
        b"Token\n2336412f37\n"
        b"TopicArn\narn:aws:sns:us-west-2:123456789012:MyTopic\n"
        b"Type\nSubscriptionConfirmation\n"
    )


def test_escaped_characters_of_the_message_are_signed_as_characters():
    message = envelope(Message='{"a":"b\\nc"}\nline two')
    assert b'Message\n{"a":"b\\nc"}\nline two\n' in string_to_sign(message)


@pytest.mark.parametrize(
    ("changes", "status"),
    [
        ({"Type": "Shout"}, 400),
        ({"MessageId": None}, 400),
        ({"TopicArn": 7}, 400),
        ({"Timestamp": "yesterday"}, 400),
        ({"Timestamp": "2012-05-02T00:54:06"}, 400),
        ({"SignatureVersion": "3"}, 401),
        ({"Signature": None}, 401),
        ({"Signature": "not base64!"}, 401),
        ({"SigningCertURL": None}, 401),
    ],
)
def test_an_envelope_that_cannot_be_checked_is_refused(changes, status):
    with pytest.raises(FeedbackRefused) as refused:
        envelope(**changes)
    assert refused.value.status == status


@pytest.mark.parametrize(
    ("topic", "host"),
    [
        ("arn:aws:sns:us-west-2:123456789012:MyTopic", "sns.us-west-2.amazonaws.com"),
        ("arn:aws-cn:sns:cn-north-1:123456789012:t", "sns.cn-north-1.amazonaws.com.cn"),
        ("arn:aws-us-gov:sns:us-gov-west-1:123456789012:t", "sns.us-gov-west-1.amazonaws.com"),
    ],
)
def test_a_topic_s_urls_must_be_on_its_region_s_sns_host(topic, host):
    assert sns_host(topic) == host
    message = envelope(
        TopicArn=topic, SigningCertURL=f"https://{host}/SimpleNotificationService-a.pem"
    )
    assert require_signing_cert_url(message) == f"https://{host}/SimpleNotificationService-a.pem"


def test_the_test_host_stands_for_sns_only_when_set():
    url = "https://127.0.0.1:8443/SimpleNotificationService-a.pem"
    message = envelope(SigningCertURL=url)
    assert require_signing_cert_url(message, "127.0.0.1:8443") == url
    for test_host in (None, "127.0.0.1:9443"):
        with pytest.raises(FeedbackRefused):
            require_signing_cert_url(message, test_host)


def test_a_subscribe_url_must_confirm_the_message_s_own_topic():
    good = (
        "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription"
        "&TopicArn=arn:aws:sns:us-west-2:123456789012:MyTopic&Token=2336412f37"
    )
    confirmation = {"Type": "SubscriptionConfirmation", "Subject": None, "Token": "2336412f37"}
    assert require_subscribe_url(envelope(**confirmation, SubscribeURL=good)) == good
    other_topic = good.replace("MyTopic", "OtherTopic")
    with pytest.raises(FeedbackRefused) as refused:
        require_subscribe_url(envelope(**confirmation, SubscribeURL=other_topic))
    assert refused.value.status == 401


def _bounce(**bounce: object) -> str:
    return json.dumps({"notificationType": "Bounce", "bounce": bounce, "mail": {"messageId": "m"}})


def test_each_recipient_of_a_permanent_bounce_is_a_hard_bounce_with_its_own_id():
    recipients = [{"emailAddress": "a@example.com"}, {"emailAddress": "b@example.com"}]
    events = ses_events(
        "id-1",
        _bounce(
            bounceType="Permanent",
            bounceSubType="NoEmail",
            bouncedRecipients=recipients,
            timestamp="2026-11-29T11:58:00.000Z",
            feedbackId="f-1",
        ),
    )
    assert [(e.event_id, e.address, e.action) for e in events] == [
        ("id-1/1", "a@example.com", FeedbackAction.HARD_BOUNCE),
        ("id-1/2", "b@example.com", FeedbackAction.HARD_BOUNCE),
    ]
    assert events[0].details == {
        "mail_message_id": "m",
        "bounce_type": "Permanent",
        "bounce_sub_type": "NoEmail",
        "feedback_id": "f-1",
    }
    assert events[0].occurred_at is not None
    assert events[0].occurred_at.isoformat() == "2026-11-29T11:58:00+00:00"


def test_a_long_diagnostic_code_is_kept_capped():
    recipient = {"emailAddress": "a@example.com", "diagnosticCode": "x" * 5000}
    [event] = ses_events("id", _bounce(bounceType="Permanent", bouncedRecipients=[recipient]))
    assert len(event.details["diagnostic_code"]) == MAX_DETAIL_CHARS


@pytest.mark.parametrize(
    "message",
    [
        _bounce(bounceType="Transient", bouncedRecipients=[{"emailAddress": "a@example.com"}]),
        _bounce(bounceType="Permanent"),  # no recipients
        json.dumps({"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "..."}),
        json.dumps({"eventType": "Open", "open": {}}),
        json.dumps({}),
    ],
)
def test_what_is_not_a_permanent_bounce_or_a_complaint_acts_on_nobody(message):
    events = ses_events("id", message)
    assert events
    assert all(event.action is None for event in events)


@pytest.mark.parametrize("message", ["Hello world!", "[1, 2]", '"text"'])
def test_a_message_that_is_not_ses_json_is_refused_as_unreadable(message):
    with pytest.raises(FeedbackRefused) as refused:
        ses_events("id", message)
    assert refused.value.status == 400


def test_sns_test_host_must_be_loopback():
    assert feedback_from_env({"SNS_TEST_HOST": "127.0.0.1:8443"}).sns_test_host == "127.0.0.1:8443"
    for value in ("sns.example.com:443", "127.0.0.1", "10.0.0.1:8443", "127.0.0.1:http"):
        with pytest.raises(ConfigError, match="SNS_TEST_HOST"):
            feedback_from_env({"SNS_TEST_HOST": value})


def test_production_refuses_sns_test_host():
    with pytest.raises(ConfigError, match="SNS_TEST_HOST is set"):
        Settings.from_env({**PRODUCTION_ENV, "SNS_TEST_HOST": "127.0.0.1:8443"})
    arn = "arn:aws:sns:eu-west-1:123456789012:ses-feedback"
    settings = Settings.from_env({**PRODUCTION_ENV, "SES_SNS_TOPIC_ARNS": arn})
    assert settings.feedback.ses_enabled
    assert settings.feedback.sns_test_host is None
