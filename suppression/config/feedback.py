"""Feedback webhooks of the sending platforms (api/inbound_*.py): each is off,
answering 404, until the secret that verifies it is set."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from suppression.config.errors import ConfigError
from suppression.domain.feedback_sendgrid import InvalidVerificationKey, load_verification_key

# A signed request older than this is refused: a captured one cannot be replayed later.
DEFAULT_MAX_AGE_SECONDS = 300


@dataclass(frozen=True)
class FeedbackSettings:
    # Amazon SES through SNS: the topic ARNs whose notifications are accepted; the
    # region of each is the one its signing certificate's host must name.
    ses_topic_arns: tuple[str, ...] = ()
    # PEM bundle that signing certificates must chain to; None: the system's roots.
    # Tests set their own CA here.
    sns_ca_file: str | None = None
    # Tests only (production refuses it): a loopback `host:port` whose HTTPS URLs
    # stand for SNS's, so a fake SNS can serve certificates and confirmations.
    sns_test_host: str | None = None
    # SendGrid Event Webhook: the verification key (base64 DER, as SendGrid shows it).
    sendgrid_public_key: str | None = field(default=None, repr=False)
    # Mailgun: the HTTP webhook signing key.
    mailgun_signing_key: str | None = field(default=None, repr=False)
    # Postmark: the basic-auth credentials put in the webhook's URL.
    postmark_username: str | None = None
    postmark_password: str | None = field(default=None, repr=False)
    max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS

    @property
    def ses_enabled(self) -> bool:
        return bool(self.ses_topic_arns)

    @property
    def sendgrid_enabled(self) -> bool:
        return self.sendgrid_public_key is not None

    @property
    def mailgun_enabled(self) -> bool:
        return self.mailgun_signing_key is not None

    @property
    def postmark_enabled(self) -> bool:
        return self.postmark_username is not None and self.postmark_password is not None


def feedback_from_env(env: Mapping[str, str]) -> FeedbackSettings:
    """SES_SNS_TOPIC_ARNS, SNS_CA_FILE, SNS_TEST_HOST, SENDGRID_WEBHOOK_PUBLIC_KEY,
    MAILGUN_WEBHOOK_SIGNING_KEY, POSTMARK_WEBHOOK_USERNAME, POSTMARK_WEBHOOK_PASSWORD,
    FEEDBACK_MAX_AGE_SECONDS."""
    arns = tuple(a.strip() for a in env.get("SES_SNS_TOPIC_ARNS", "").split(",") if a.strip())
    for arn in arns:
        parts = arn.split(":")
        if len(parts) != 6 or parts[:3] != ["arn", parts[1], "sns"] or not parts[3]:
            raise ConfigError(
                "SES_SNS_TOPIC_ARNS must be SNS topic ARNs "
                f"(arn:aws:sns:<region>:<account>:<topic>), got {arn[:80]!r}"
            )
    sns_test_host = env.get("SNS_TEST_HOST", "").strip() or None
    if sns_test_host is not None and not _loopback_host_port(sns_test_host):
        raise ConfigError(
            "SNS_TEST_HOST must be a loopback host:port (127.0.0.1:8443), "
            f"got {sns_test_host[:80]!r}"
        )
    username = env.get("POSTMARK_WEBHOOK_USERNAME") or None
    password = env.get("POSTMARK_WEBHOOK_PASSWORD") or None
    if (username is None) != (password is None):
        raise ConfigError(
            "POSTMARK_WEBHOOK_USERNAME and POSTMARK_WEBHOOK_PASSWORD are set together or not at all"
        )
    if username is not None and ":" in username:
        raise ConfigError(
            "POSTMARK_WEBHOOK_USERNAME may not hold a colon (basic auth splits on it)"
        )
    sendgrid_key = env.get("SENDGRID_WEBHOOK_PUBLIC_KEY") or None
    if sendgrid_key is not None:
        try:
            load_verification_key(sendgrid_key)
        except InvalidVerificationKey as error:
            raise ConfigError(
                f"SENDGRID_WEBHOOK_PUBLIC_KEY must be the verification key SendGrid shows: {error}"
            ) from None
    max_age = env.get("FEEDBACK_MAX_AGE_SECONDS", str(DEFAULT_MAX_AGE_SECONDS)).strip()
    if not max_age.isdigit() or not 30 <= int(max_age) <= 3600:
        raise ConfigError("FEEDBACK_MAX_AGE_SECONDS must be a whole number from 30 to 3600")
    return FeedbackSettings(
        ses_topic_arns=arns,
        sns_ca_file=env.get("SNS_CA_FILE") or None,
        sns_test_host=sns_test_host,
        sendgrid_public_key=sendgrid_key,
        mailgun_signing_key=env.get("MAILGUN_WEBHOOK_SIGNING_KEY") or None,
        postmark_username=username,
        postmark_password=password,
        max_age_seconds=int(max_age),
    )


LOOPBACK_HOSTS = ("127.0.0.1", "[::1]", "localhost")


def _loopback_host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return host in LOOPBACK_HOSTS and port.isascii() and port.isdigit() and 0 < int(port) < 65536
