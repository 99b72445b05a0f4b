"""UNSUBSCRIBE_IMAP_URL and the poller's other settings: what starts, and what is
refused with a message that says why (never echoing the password)."""

from __future__ import annotations

import pytest
from production_env import PRODUCTION_ENV

from suppression.config.mailbox import MailboxSettings, mailbox_from_env
from suppression.config.settings import ConfigError, Settings
from suppression.connectors.imap import ImapMailbox

SECRET = "p%40ss%3Aword%2F1"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            f"imaps://unsubscribe%40news.example.org:{SECRET}@imap.example.org/INBOX",
            ("imaps", "imap.example.org", 993, "unsubscribe@news.example.org", "p@ss:word/1"),
        ),
        (
            "imap+starttls://u:p@imap.example.org:1143/Lists%2FUnsubscribe",
            ("imap+starttls", "imap.example.org", 1143, "u", "p"),
        ),
        ("imap://u:p@127.0.0.1", ("imap", "127.0.0.1", 143, "u", "p")),
        ("IMAPS://u:@imap.example.org/", ("imaps", "imap.example.org", 993, "u", "")),
    ],
)
def test_an_imap_url_names_scheme_host_port_and_account(url, expected):
    mailbox = ImapMailbox.from_url(url)
    assert (
        mailbox.scheme,
        mailbox.host,
        mailbox.port,
        mailbox.username,
        mailbox.password,
    ) == expected
    assert "p@ss" not in repr(mailbox)


def test_the_folder_is_the_urls_path_percent_decoded_and_inbox_by_default():
    assert ImapMailbox.from_url("imaps://u:p@h/Lists%2FUnsubscribe").folder == "Lists/Unsubscribe"
    assert ImapMailbox.from_url("imaps://u:p@h/INBOX").folder == "INBOX"
    assert ImapMailbox.from_url("imaps://u:p@h").folder == "INBOX"


def test_the_mailbox_is_named_without_its_account():
    mailbox = ImapMailbox.from_url(f"imaps://unsubscribe%40news.example.org:{SECRET}@h:993/INBOX")
    assert mailbox.name == "imap:h:993/INBOX"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://u:p@imap.example.org", "must start with one of: imap://"),
        ("imaps://u:p@", "names no host"),
        ("imaps://u:p@host:notaport", "port that is not a number"),
        ("imaps://host/INBOX", "needs the account"),
        ("imaps://user@host/INBOX", "needs the account"),
        ("imaps://u:p@host/INBOX?tls=1", r"scheme://user:password@host\[:port\]\[/folder\]"),
        ("imaps://u:p@host/Caf%C3%A9", "printable ASCII"),
        ("imaps://u:p@host/%0D%0AINBOX", "printable ASCII"),
    ],
)
def test_a_bad_imap_url_is_refused_with_a_reason(url, message):
    with pytest.raises(ValueError, match=message):
        ImapMailbox.from_url(url)


def test_without_the_url_the_poller_is_off_with_its_defaults():
    settings = mailbox_from_env({})
    assert not settings.enabled
    assert (settings.processed_folder, settings.unmatched_folder) == ("Processed", "Unmatched")
    assert (settings.interval_seconds, settings.timeout_seconds) == (60.0, 30.0)
    with pytest.raises(ConfigError, match="UNSUBSCRIBE_IMAP_URL is not set"):
        settings.mailbox()


def test_every_setting_is_read(tmp_path):
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    settings = mailbox_from_env(
        {
            "UNSUBSCRIBE_IMAP_URL": f"imaps://u:{SECRET}@imap.example.org/INBOX",
            "UNSUBSCRIBE_IMAP_PROCESSED_FOLDER": "Done/Unsubscribes",
            "UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER": "To read",
            "UNSUBSCRIBE_IMAP_INTERVAL": "15",
            "UNSUBSCRIBE_IMAP_TIMEOUT": "2.5",
            "UNSUBSCRIBE_IMAP_CA_FILE": str(ca),
        }
    )
    assert settings.enabled
    assert (settings.processed_folder, settings.unmatched_folder) == (
        "Done/Unsubscribes",
        "To read",
    )
    assert (settings.interval_seconds, settings.timeout_seconds) == (15.0, 2.5)
    mailbox = settings.mailbox()
    assert (mailbox.timeout, mailbox.ca_file, mailbox.password) == (2.5, str(ca), "p@ss:word/1")
    assert "p@ss" not in repr(settings)
    assert SECRET not in repr(settings)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"UNSUBSCRIBE_IMAP_URL": "pop3://u:p@h"}, "must start with one of"),
        ({"UNSUBSCRIBE_IMAP_URL": "imaps://h/INBOX"}, "needs the account"),
        ({"UNSUBSCRIBE_IMAP_INTERVAL": "0"}, "UNSUBSCRIBE_IMAP_INTERVAL must be a number"),
        ({"UNSUBSCRIBE_IMAP_INTERVAL": "7200"}, "from 1 to 3600"),
        ({"UNSUBSCRIBE_IMAP_INTERVAL": "nan"}, "UNSUBSCRIBE_IMAP_INTERVAL"),
        ({"UNSUBSCRIBE_IMAP_TIMEOUT": "soon"}, "UNSUBSCRIBE_IMAP_TIMEOUT must be a number"),
        ({"UNSUBSCRIBE_IMAP_PROCESSED_FOLDER": " Done"}, "UNSUBSCRIBE_IMAP_PROCESSED_FOLDER"),
        ({"UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER": "Ünmatched"}, "printable ASCII"),
        (
            {
                "UNSUBSCRIBE_IMAP_PROCESSED_FOLDER": "Done",
                "UNSUBSCRIBE_IMAP_UNMATCHED_FOLDER": "Done",
            },
            "must differ",
        ),
        (
            {"UNSUBSCRIBE_IMAP_URL": "imaps://u:p@h/Processed"},
            "the processed and unmatched folders must be others",
        ),
        ({"UNSUBSCRIBE_IMAP_CA_FILE": "/nowhere/ca.pem"}, "names no file"),
    ],
)
def test_bad_mailbox_settings_are_refused_with_a_reason(environ, message):
    with pytest.raises(ConfigError, match=message):
        mailbox_from_env(environ)


def test_a_refusal_never_echoes_the_password():
    with pytest.raises(ConfigError) as refused:
        mailbox_from_env({"UNSUBSCRIBE_IMAP_URL": f"imaps://u:{SECRET}@h:99999/INBOX"})
    assert "p%40ss" not in str(refused.value)
    assert "p@ss" not in str(refused.value)


def test_production_refuses_plain_imap_to_another_host():
    environ = {**PRODUCTION_ENV, "UNSUBSCRIBE_IMAP_URL": f"imap://u:{SECRET}@imap.example.org/"}
    with pytest.raises(ConfigError, match="use imaps:// or imap\\+starttls://") as refused:
        Settings.from_env(environ)
    assert "p@ss" not in str(refused.value)


@pytest.mark.parametrize(
    "url",
    [
        "imap://u:p@127.0.0.1:1143/INBOX",
        "imap://u:p@localhost/INBOX",
        "imap://u:p@[::1]/INBOX",
        "imaps://u:p@imap.example.org/INBOX",
        "imap+starttls://u:p@imap.example.org/INBOX",
    ],
)
def test_production_takes_tls_anywhere_and_plain_imap_on_loopback(url):
    settings = Settings.from_env({**PRODUCTION_ENV, "UNSUBSCRIBE_IMAP_URL": url})
    assert settings.mailbox.enabled
    assert settings.mailbox.mailbox().host in ("127.0.0.1", "localhost", "::1", "imap.example.org")


def test_development_takes_plain_imap_anywhere():
    settings = mailbox_from_env({"UNSUBSCRIBE_IMAP_URL": "imap://u:p@imap.example.org/"})
    assert settings.mailbox().scheme == "imap"


def test_settings_built_in_code_have_the_poller_off(make_settings):
    assert make_settings().mailbox == MailboxSettings()
    assert not make_settings().mailbox.enabled
