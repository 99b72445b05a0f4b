"""A fake Amazon SNS for the SES webhook's tests: a test CA, an intermediate and a
signing certificate made with `cryptography`, served from a loopback HTTPS server,
and messages signed the way SNS signs them.

What it follows:
- the message formats and the headers SNS posts with:
  https://docs.aws.amazon.com/sns/latest/dg/sns-message-and-json-formats.html
  https://docs.aws.amazon.com/sns/latest/dg/http-notification-json.html
  https://docs.aws.amazon.com/sns/latest/dg/http-subscription-confirmation-json.html
  https://docs.aws.amazon.com/sns/latest/dg/http-unsubscribe-confirmation-json.html
- the string to sign and SignatureVersion 1 (SHA1withRSA) / 2 (SHA256withRSA):
  https://docs.aws.amazon.com/sns/latest/dg/sns-verify-signature-of-message.html
- the SubscribeURL, a GET of SNS's ConfirmSubscription action answered with a
  ConfirmSubscriptionResponse:
  https://docs.aws.amazon.com/sns/latest/api/API_ConfirmSubscription.html
- SES's notifications (the Message of a Notification):
  https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html

The server names itself `127.0.0.1:<port>`: the app reaches it because the tests set
SNS_TEST_HOST to that (production refuses the setting) and SNS_CA_FILE to the CA.
The signing certificate, like SNS's, is served alone: its intermediate is found
through the certificate's Authority Information Access (CA Issuers).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import shutil
import ssl
import tempfile
import threading
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID

from suppression.domain.sns import SIGNED_FIELDS, MessageType

# AWS's own example topic and account (the SNS JSON format pages).
TOPIC_ARN = "arn:aws:sns:us-west-2:123456789012:MyTopic"
SUBSCRIPTION_ARN = f"{TOPIC_ARN}:c9135db0-26c4-47ec-8998-413945fb5a96"
VALID_FROM = datetime(2020, 1, 1, tzinfo=UTC)
VALID_UNTIL = datetime(2040, 1, 1, tzinfo=UTC)
HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Suppression tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: rsa.RSAPrivateKey,
    *,
    ca: bool,
    dns: list[str] = (),
    ip: str | None = None,
    ca_issuers: str | None = None,
    valid: tuple[datetime, datetime] = (VALID_FROM, VALID_UNTIL),
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(valid[0])
        .not_valid_after(valid[1])
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    if ca:
        usage = x509.KeyUsage(False, False, False, False, False, True, True, False, False)
        builder = builder.add_extension(usage, critical=True)
    else:
        usage = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        builder = builder.add_extension(usage, critical=True).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns]
    if ip is not None:
        names.append(x509.IPAddress(ipaddress.ip_address(ip)))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if ca_issuers is not None:
        access = x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(ca_issuers)
        )
        builder = builder.add_extension(x509.AuthorityInformationAccess([access]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


class FakeSns:
    """The CA, SNS's certificates and a loopback HTTPS server that serves them and
    answers ConfirmSubscription. `confirmations` lists the query of each GET of a
    SubscribeURL; `fetches` the path of every request."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="sns-fake-"))
        self.root_key, self.intermediate_key, self.signing_key = _key(), _key(), _key()
        self.root = _certificate(
            "Suppression Test Root CA", self.root_key, None, self.root_key, ca=True
        )
        self.intermediate = _certificate(
            "Suppression Test SNS CA", self.intermediate_key, self.root, self.root_key, ca=True
        )
        self.ca_file = str(self.folder / "ca.pem")
        Path(self.ca_file).write_bytes(_pem(self.root))
        self.confirmations: list[dict[str, list[str]]] = []
        self.fetches: list[str] = []
        self.confirm_status = 200
        self.files: dict[str, tuple[bytes, str]] = {}
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self._serve_tls()
        self.files["/intermediate.cer"] = (
            self.intermediate.public_bytes(serialization.Encoding.DER),
            "application/pkix-cert",
        )
        # SNS's signing certificate: named sns.amazonaws.com, served alone.
        self.signing = self._leaf(self.signing_key, "sns.amazonaws.com")
        self.cert_path = self.serve_pem(
            "/SimpleNotificationService-7506a1e35b36ef5a444dd1a8e7cc3ed8.pem", self.signing
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def cert_url(self) -> str:
        return self.url(self.cert_path)

    def url(self, path: str) -> str:
        return f"https://{self.host}{path}"

    def _leaf(
        self,
        key: rsa.RSAPrivateKey,
        name: str,
        valid: tuple[datetime, datetime] = (VALID_FROM, VALID_UNTIL),
    ) -> x509.Certificate:
        return _certificate(
            name,
            key,
            self.intermediate,
            self.intermediate_key,
            ca=False,
            dns=[name],
            ca_issuers=self.url("/intermediate.cer"),
            valid=valid,
        )

    def serve_pem(self, path: str, *certificates: x509.Certificate) -> str:
        self.files[path] = (b"".join(_pem(c) for c in certificates), "application/x-pem-file")
        return path

    def other_certificate(
        self, name: str = "sns.amazonaws.com", **kwargs
    ) -> tuple[str, rsa.RSAPrivateKey]:
        """Another certificate of this CA (a name, a validity): its path and key."""
        key = _key()
        path = f"/other-{uuid.uuid4().hex}.pem"
        return self.serve_pem(path, self._leaf(key, name, **kwargs)), key

    def chained_certificate(self) -> tuple[str, rsa.RSAPrivateKey]:
        """A certificate of this CA served with its intermediate: its path and key."""
        key = _key()
        path = f"/chained-{uuid.uuid4().hex}.pem"
        return self.serve_pem(path, self._leaf(key, "sns.amazonaws.com"), self.intermediate), key

    def self_signed_certificate(self) -> tuple[str, rsa.RSAPrivateKey]:
        """A certificate naming SNS that chains to no trusted root: its path and key."""
        key = _key()
        certificate = _certificate(
            "sns.amazonaws.com", key, None, key, ca=False, dns=["sns.amazonaws.com"]
        )
        return self.serve_pem(f"/self-signed-{uuid.uuid4().hex}.pem", certificate), key

    def _serve_tls(self) -> None:
        key = _key()
        certificate = _certificate(
            "127.0.0.1", key, self.root, self.root_key, ca=False, ip="127.0.0.1"
        )
        chain, key_file = self.folder / "server.pem", self.folder / "server.key"
        chain.write_bytes(_pem(certificate))
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key_file)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                fake.fetches.append(parts.path)
                if parts.path == "/" and parts.query:
                    query = parse_qs(parts.query)
                    fake.confirmations.append(query)
                    self._answer(fake.confirm_status, _confirmed(query), "text/xml")
                elif parts.path in fake.files:
                    self._answer(200, *fake.files[parts.path])
                else:
                    self._answer(404, b"<Error><Code>NotFound</Code></Error>", "text/xml")

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

    def reset(self) -> None:
        self.confirmations.clear()
        self.fetches.clear()
        self.confirm_status = 200

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        shutil.rmtree(self.folder, ignore_errors=True)

    # Messages, signed as SNS signs them.

    def notification(
        self,
        message: str,
        timestamp: datetime,
        *,
        version: str = "2",
        message_id: str | None = None,
        subject: str | None = None,
        topic_arn: str = TOPIC_ARN,
        cert_url: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, str]:
        """A Notification as SNS posts it (http-notification-json.html)."""
        document = {
            "Type": MessageType.NOTIFICATION.value,
            "MessageId": message_id or str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Message": message,
            "Timestamp": _sns_time(timestamp),
            "UnsubscribeURL": self.url(
                f"/?Action=Unsubscribe&SubscriptionArn={quote(SUBSCRIPTION_ARN, safe='')}"
            ),
        }
        if subject is not None:
            document["Subject"] = subject
        return self.sign(document, version, cert_url, key)

    def subscription_confirmation(
        self,
        timestamp: datetime,
        *,
        kind: MessageType = MessageType.SUBSCRIPTION_CONFIRMATION,
        topic_arn: str = TOPIC_ARN,
        subscribe_url: str | None = None,
        version: str = "1",
    ) -> dict[str, str]:
        """A SubscriptionConfirmation (or UnsubscribeConfirmation) as SNS posts it."""
        token = uuid.uuid4().hex * 4
        action = "ConfirmSubscription"
        verb = (
            "subscribe to" if kind is MessageType.SUBSCRIPTION_CONFIRMATION else "unsubscribe from"
        )
        document = {
            "Type": kind.value,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic_arn,
            "Message": (
                f"You have chosen to {verb} the topic {topic_arn}.\n"
                "To confirm the subscription, visit the SubscribeURL included in this message."
            ),
            "SubscribeURL": subscribe_url
            or self.url(f"/?Action={action}&TopicArn={quote(topic_arn, safe='')}&Token={token}"),
            "Timestamp": _sns_time(timestamp),
        }
        return self.sign(document, version)

    def sign(
        self,
        document: dict[str, str],
        version: str,
        cert_url: str | None = None,
        key: rsa.RSAPrivateKey | None = None,
    ) -> dict[str, str]:
        """`document` with SignatureVersion, Signature and SigningCertURL added."""
        signed = string_to_sign(document)
        signature = (key or self.signing_key).sign(signed, padding.PKCS1v15(), HASHES[version]())
        return {
            **document,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": cert_url or self.cert_url,
        }


def string_to_sign(document: dict[str, str]) -> bytes:
    """SNS's string to sign, written from AWS's page rather than imported, so a
    mistake in the service's own is not repeated here."""
    if document["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    assert tuple(names) == SIGNED_FIELDS[MessageType(document["Type"])]
    return "".join(f"{name}\n{document[name]}\n" for name in names if name in document).encode()


def headers(document: dict[str, str]) -> dict[str, str]:
    """The headers SNS posts a message with (sns-message-and-json-formats.html)."""
    sent = {
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
        "x-amz-sns-message-type": document["Type"],
        "x-amz-sns-message-id": document["MessageId"],
        "x-amz-sns-topic-arn": document["TopicArn"],
    }
    if document["Type"] == "Notification":
        sent["x-amz-sns-subscription-arn"] = SUBSCRIPTION_ARN
    return sent


def body(document: dict[str, str]) -> bytes:
    return json.dumps(document, indent=2).encode()


def _sns_time(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def _confirmed(query: dict[str, list[str]]) -> bytes:
    topic = query.get("TopicArn", [""])[0]
    return (
        '<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
        f"<ConfirmSubscriptionResult><SubscriptionArn>{topic}:"
        "c9135db0-26c4-47ec-8998-413945fb5a96</SubscriptionArn></ConfirmSubscriptionResult>"
        "<ResponseMetadata><RequestId>075ecce8-8dac-11e1-bf80-f781d96e9307</RequestId>"
        "</ResponseMetadata></ConfirmSubscriptionResponse>"
    ).encode()


# SES notifications, as on https://docs.aws.amazon.com/ses/latest/dg/notification-examples.html
# (the "Bounce notification with a DSN" and "Complaint notification with a feedback
# report" examples; the transient bounce changes bounceType and subtype only).
MAIL = {
    "timestamp": "2016-01-27T14:59:38.237Z",
    "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
    "source": "john@example.com",
    "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
    "sourceIp": "127.0.3.0",
    "sendingAccountId": "123456789012",
    "callerIdentity": "IAM_user_or_role_name",
    "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
}


def bounce(*addresses: str, bounce_type: str = "Permanent", sub_type: str = "General") -> str:
    recipients = [
        {
            "emailAddress": address,
            "status": "5.1.1",
            "action": "failed",
            "diagnosticCode": f"smtp; 550 5.1.1 <{address}>... User",
        }
        for address in addresses or ("jane@example.com",)
    ]
    return json.dumps(
        {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": bounce_type,
                "reportingMTA": "dns; email.example.com",
                "bouncedRecipients": recipients,
                "bounceSubType": sub_type,
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
                "remoteMtaIp": "127.0.2.0",
            },
            "mail": MAIL,
        }
    )


def complaint(*addresses: str, event_publishing: bool = False) -> str:
    kind = "eventType" if event_publishing else "notificationType"
    return json.dumps(
        {
            kind: "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [
                    {"emailAddress": address} for address in addresses or ("richard@example.com",)
                ],
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2016-01-27T14:59:38.237Z",
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
            },
            "mail": MAIL,
        }
    )


def delivery(*addresses: str) -> str:
    """The "Delivery notification" example of the same page."""
    return json.dumps(
        {
            "notificationType": "Delivery",
            "mail": MAIL,
            "delivery": {
                "timestamp": "2016-01-27T14:59:38.237Z",
                "recipients": list(addresses or ("jane@example.com",)),
                "processingTimeMillis": 546,
                "reportingMTA": "a8-70.smtp-out.amazonses.com",
                "smtpResponse": "250 ok:  Message 64111812 accepted",
                "remoteMtaIp": "127.0.2.0",
            },
        }
    )
