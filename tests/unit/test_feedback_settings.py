"""Feedback webhook settings: each webhook is off until its secret is set, and a
setting that cannot work stops the start with a message naming it."""

from datetime import UTC, datetime, timedelta

import pytest

from suppression.config.feedback import feedback_from_env
from suppression.config.settings import ConfigError
from suppression.domain.feedback import FeedbackRefused, require_event_id, require_fresh

# A P-256 verification key as SendGrid shows it (sendgrid-python's test key).
SENDGRID_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw"
    "+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
)


def test_every_webhook_is_off_by_default():
    settings = feedback_from_env({})
    assert not any(
        (
            settings.ses_enabled,
            settings.sendgrid_enabled,
            settings.mailgun_enabled,
            settings.postmark_enabled,
        )
    )
    assert settings.max_age_seconds == 300


def test_each_secret_turns_its_webhook_on():
    settings = feedback_from_env(
        {
            "SES_SNS_TOPIC_ARNS": "arn:aws:sns:eu-west-1:123456789012:ses-feedback",
            "SENDGRID_WEBHOOK_PUBLIC_KEY": SENDGRID_KEY,
            "MAILGUN_WEBHOOK_SIGNING_KEY": "key-1",
            "POSTMARK_WEBHOOK_USERNAME": "postmark",
            "POSTMARK_WEBHOOK_PASSWORD": "s3cret",
        }
    )
    assert settings.ses_topic_arns == ("arn:aws:sns:eu-west-1:123456789012:ses-feedback",)
    assert all(
        (
            settings.ses_enabled,
            settings.sendgrid_enabled,
            settings.mailgun_enabled,
            settings.postmark_enabled,
        )
    )
    assert "s3cret" not in repr(settings)
    assert "key-1" not in repr(settings)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SES_SNS_TOPIC_ARNS": "ses-feedback"}, "SES_SNS_TOPIC_ARNS"),
        ({"SES_SNS_TOPIC_ARNS": "arn:aws:sqs:eu-west-1:1:q"}, "SES_SNS_TOPIC_ARNS"),
        ({"POSTMARK_WEBHOOK_USERNAME": "postmark"}, "POSTMARK_WEBHOOK_PASSWORD"),
        (
            {"POSTMARK_WEBHOOK_USERNAME": "a:b", "POSTMARK_WEBHOOK_PASSWORD": "x"},
            "POSTMARK_WEBHOOK_USERNAME",
        ),
        ({"FEEDBACK_MAX_AGE_SECONDS": "5"}, "FEEDBACK_MAX_AGE_SECONDS"),
        ({"FEEDBACK_MAX_AGE_SECONDS": "five"}, "FEEDBACK_MAX_AGE_SECONDS"),
    ],
)
def test_a_setting_that_cannot_work_is_refused_by_name(env, named):
    with pytest.raises(ConfigError, match=named):
        feedback_from_env(env)


def test_a_signature_older_or_newer_than_the_window_is_refused():
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    require_fresh(now - timedelta(seconds=300), now, 300)
    for skew in (timedelta(seconds=301), timedelta(seconds=-301)):
        with pytest.raises(FeedbackRefused) as refused:
            require_fresh(now - skew, now, 300)
        assert refused.value.status == 401


@pytest.mark.parametrize("value", [None, "", "  ", "x" * 201, "a\x00b", 1.5, {"id": 1}])
def test_an_event_without_a_usable_id_is_refused_as_unreadable(value):
    with pytest.raises(FeedbackRefused) as refused:
        require_event_id(value, "the event")
    assert refused.value.status == 400


def test_an_event_id_may_be_a_number():
    assert require_event_id(4323372036854775807, "the record") == "4323372036854775807"
