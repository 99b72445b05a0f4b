"""Amazon SNS messages posted to an HTTPS endpoint: the envelope, the string SNS
signs, and which URLs in it may be followed.

SNS posts one JSON document per request (Content-Type text/plain unless the
delivery policy says otherwise) and names its type in the `x-amz-sns-message-type`
header: https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
The signature covers some of the document's fields, one per line as `name\\nvalue\\n`
in byte order of the names, and which fields depends on the type:
https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
SignatureVersion 1 is SHA1withRSA, 2 is SHA256withRSA (PKCS #1 v1.5).

The signing certificate and the subscription's confirmation are fetched from the
URLs the message carries, so both must be HTTPS on the SNS host of the region of a
topic the service accepts: `sns.<region>.amazonaws.com` (`.amazonaws.com.cn` in the
aws-cn partition). Anything else would let a forged message pick the key that
verifies it, or make the service fetch what it names.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import SplitResult, parse_qs, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from suppression.domain.feedback import FeedbackRefused

TYPE_HEADER = "x-amz-sns-message-type"
# A signature over 4096-bit keys is 512 bytes; nothing larger is a signature.
MAX_SIGNATURE_BYTES = 1024


class MessageType(StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


# The signed fields of each type, in the order they are signed.
NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)
SIGNED_FIELDS = {
    MessageType.NOTIFICATION: NOTIFICATION_FIELDS,
    MessageType.SUBSCRIPTION_CONFIRMATION: SUBSCRIPTION_FIELDS,
    MessageType.UNSUBSCRIBE_CONFIRMATION: SUBSCRIPTION_FIELDS,
}
# Subject is the one optional signed field: a notification published without one
# has none, and the string to sign leaves it out.
OPTIONAL_FIELDS = frozenset({"Subject"})
SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True)
class SnsMessage:
    type: MessageType
    fields: dict[str, str]  # the signed fields the message has, as sent
    timestamp: datetime
    signature_version: str
    signature: bytes
    signing_cert_url: str

    @property
    def message_id(self) -> str:
        return self.fields["MessageId"]

    @property
    def topic_arn(self) -> str:
        return self.fields["TopicArn"]

    @property
    def message(self) -> str:
        return self.fields["Message"]

    @property
    def subscribe_url(self) -> str | None:
        return self.fields.get("SubscribeURL")


def read_envelope(body: bytes, header_type: str | None) -> SnsMessage:
    """The SNS message a request carries. FeedbackRefused(400) when the body is not
    one, (401) when it carries no signature this service can check."""
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise FeedbackRefused(400, "the body is not an SNS message (not JSON)") from None
    if not isinstance(document, dict):
        raise FeedbackRefused(400, "the body is not an SNS message (not a JSON object)")
    try:
        kind = MessageType(str(document.get("Type")))
    except ValueError:
        raise FeedbackRefused(400, "the body is not an SNS message (unknown Type)") from None
    if header_type != kind.value:
        raise FeedbackRefused(400, f"the {TYPE_HEADER} header does not match the message Type")
    fields: dict[str, str] = {}
    for name in SIGNED_FIELDS[kind]:
        value = document.get(name)
        if value is None and name in OPTIONAL_FIELDS:
            continue
        if not isinstance(value, str) or (not value and name != "Message"):
            raise FeedbackRefused(400, f"the SNS message has no {name}")
        fields[name] = value
    version = document.get("SignatureVersion")
    if version not in SIGNATURE_HASHES:
        raise FeedbackRefused(401, "the SNS message has no SignatureVersion 1 or 2")
    signing_cert_url = document.get("SigningCertURL")
    if not isinstance(signing_cert_url, str) or not signing_cert_url:
        raise FeedbackRefused(401, "the SNS message has no SigningCertURL")
    return SnsMessage(
        type=kind,
        fields=fields,
        timestamp=_timestamp(fields["Timestamp"]),
        signature_version=version,
        signature=_signature(document.get("Signature")),
        signing_cert_url=signing_cert_url,
    )


def string_to_sign(message: SnsMessage) -> bytes:
    """What SNS signed: each signed field present, `name\\nvalue\\n`, in order."""
    lines = []
    for name in SIGNED_FIELDS[message.type]:
        if name in message.fields:
            lines.append(f"{name}\n{message.fields[name]}\n")
    return "".join(lines).encode("utf-8")


def verify_signature(message: SnsMessage, public_key: rsa.RSAPublicKey) -> None:
    """FeedbackRefused(401) unless the signing certificate's key signed the message."""
    algorithm = SIGNATURE_HASHES[message.signature_version]()
    try:
        public_key.verify(message.signature, string_to_sign(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise FeedbackRefused(401, "the SNS signature does not match the message") from None


def require_accepted_topic(message: SnsMessage, accepted: tuple[str, ...]) -> None:
    """FeedbackRefused(403) for a topic not configured: checked before anything is
    fetched, so a message of any other topic costs nothing."""
    if message.topic_arn not in accepted:
        raise FeedbackRefused(403, "the TopicArn is not one of SES_SNS_TOPIC_ARNS")


def topic_region(topic_arn: str) -> tuple[str, str]:
    """(partition, region) of `arn:<partition>:sns:<region>:<account>:<topic>`."""
    parts = topic_arn.split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sns" or not parts[3]:
        raise FeedbackRefused(400, "the TopicArn is not an SNS topic ARN")
    return parts[1], parts[3]


def sns_host(topic_arn: str) -> str:
    """The SNS host of the topic's region, the only one its URLs may name."""
    partition, region = topic_region(topic_arn)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"sns.{region}.{domain}"


def require_signing_cert_url(message: SnsMessage, test_host: str | None = None) -> str:
    """The SigningCertURL, when it is an HTTPS `.pem` on the topic's SNS host (or on
    `test_host`, a loopback `host:port` that tests stand in for SNS with)."""
    url = message.signing_cert_url
    parts = _sns_url(url, message.topic_arn, test_host, "SigningCertURL")
    if not parts.path.endswith(".pem") or parts.query or parts.fragment:
        raise FeedbackRefused(401, "the SigningCertURL does not name a .pem certificate")
    return url


def require_subscribe_url(message: SnsMessage, test_host: str | None = None) -> str:
    """The SubscribeURL of a SubscriptionConfirmation, when it is SNS's
    ConfirmSubscription action for the message's own topic, on the topic's SNS host."""
    url = message.subscribe_url or ""
    parts = _sns_url(url, message.topic_arn, test_host, "SubscribeURL")
    query = parse_qs(parts.query)
    if query.get("Action") != ["ConfirmSubscription"] or query.get("TopicArn") != [
        message.topic_arn
    ]:
        raise FeedbackRefused(
            401, "the SubscribeURL is not a ConfirmSubscription of the message's topic"
        )
    return url


def _sns_url(url: str, topic_arn: str, test_host: str | None, name: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FeedbackRefused(401, f"the {name} is not a URL") from None
    if parts.scheme != "https" or parts.username is not None or parts.password is not None:
        raise FeedbackRefused(401, f"the {name} is not an https URL")
    if test_host is not None and parts.netloc == test_host:
        return parts
    expected = sns_host(topic_arn)
    if parts.hostname != expected or port not in (None, 443):
        raise FeedbackRefused(
            401, f"the {name} is not on {expected}, the SNS host of the topic's region"
        )
    return parts


def _timestamp(text: str) -> datetime:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        raise FeedbackRefused(400, "the SNS message's Timestamp is not an ISO 8601 time") from None
    if stamp.tzinfo is None:
        raise FeedbackRefused(400, "the SNS message's Timestamp has no time zone")
    return stamp


def _signature(value: object) -> bytes:
    if not isinstance(value, str) or not value or len(value) > MAX_SIGNATURE_BYTES * 2:
        raise FeedbackRefused(401, "the SNS message has no Signature")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise FeedbackRefused(401, "the SNS message's Signature is not base64") from None
