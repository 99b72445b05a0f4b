"""SMTP_URL, MAIL_FROM and CONFIRM_LINK_HOURS: what starts, and what is refused with
a message that says why (never echoing a password)."""

from __future__ import annotations

import pytest

from suppression.config.environment import mail_from_env
from suppression.config.settings import ConfigError
from suppression.connectors.smtp import SmtpRelay


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://relay.internal", ("smtp", "relay.internal", 25, None, None)),
        ("smtp://127.0.0.1:2525", ("smtp", "127.0.0.1", 2525, None, None)),
        (
            "smtp+starttls://mailer%40example.com:p%40ss%3Aword@smtp.example.com:587",
            ("smtp+starttls", "smtp.example.com", 587, "mailer@example.com", "p@ss:word"),
        ),
        ("smtps://u:p@smtp.example.com", ("smtps", "smtp.example.com", 465, "u", "p")),
        (
            "SMTP+STARTTLS://smtp.example.com",
            ("smtp+starttls", "smtp.example.com", 587, None, None),
        ),
    ],
)
def test_an_smtp_url_names_scheme_host_port_and_credentials(url, expected):
    relay = SmtpRelay.from_url(url)
    assert (relay.scheme, relay.host, relay.port, relay.username, relay.password) == expected
    assert "p@ss" not in repr(relay)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://relay", "must start with one of"),
        ("smtp://", "names no host"),
        ("smtp://relay:notaport", "port that is not a number"),
        ("smtp://relay/INBOX", "and nothing more"),
        ("smtp://relay?tls=1", "and nothing more"),
    ],
)
def test_a_bad_smtp_url_is_refused_with_a_reason(url, message):
    with pytest.raises(ValueError, match=message):
        SmtpRelay.from_url(url)


def test_without_smtp_url_there_is_no_confirmation_mail():
    mail = mail_from_env({})
    assert not mail.enabled
    assert mail.confirm_link_hours == 48


def test_smtp_url_needs_a_sender():
    with pytest.raises(ConfigError, match="MAIL_FROM"):
        mail_from_env({"SMTP_URL": "smtp://relay"})
    for bad in ("not an address", "news@example.com\r\nBcc: all@example.com"):
        with pytest.raises(ConfigError, match="MAIL_FROM must be an address"):
            mail_from_env({"SMTP_URL": "smtp://relay", "MAIL_FROM": bad})
    mail = mail_from_env({"SMTP_URL": "smtp://relay", "MAIL_FROM": "News <news@example.com>"})
    assert mail.enabled


@pytest.mark.parametrize("hours", ["0", "721", "-3"])
def test_the_link_lasts_one_hour_to_thirty_days(hours):
    with pytest.raises(ConfigError, match="CONFIRM_LINK_HOURS"):
        mail_from_env({"CONFIRM_LINK_HOURS": hours})


def test_production_refuses_credentials_over_plain_smtp():
    env = {"SMTP_URL": "smtp://user:secret@relay", "MAIL_FROM": "news@example.com"}
    with pytest.raises(ConfigError, match="plain SMTP") as caught:
        mail_from_env(env, production=True)
    assert "secret" not in str(caught.value)
    assert mail_from_env(env).enabled  # locally, a test relay is fine
    secure = {**env, "SMTP_URL": "smtp+starttls://user:secret@relay"}
    assert mail_from_env(secure, production=True).enabled


def test_the_password_is_not_in_the_settings_repr():
    mail = mail_from_env({"SMTP_URL": "smtps://u:hunter2@relay", "MAIL_FROM": "n@example.com"})
    assert "hunter2" not in repr(mail)
