"""A real SMTP server on loopback for the tests (aiosmtpd): it keeps every message
it accepts, and can refuse the next recipients with a given reply, speak STARTTLS
or implicit TLS with a certificate of a private CA, and require AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

USER, PASSWORD = "relay-user", "relay p@ss:word"


@dataclass
class Catcher:
    """The handler: accepted messages, and replies to give instead of accepting."""

    messages: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    refuse_next: list[str] = field(default_factory=list)  # e.g. "451 4.3.0 try later"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse_next:
            return self.refuse_next.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (
        auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    url: str
    catcher: Catcher
    ca_file: str | None = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.catcher.messages


def write_certificate(folder: Path) -> tuple[Path, Path]:
    """A CA-signed certificate for 127.0.0.1: (the CA's certificate, the server's
    chain+key file for ssl.load_cert_chain)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test relay CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain = folder / "server.pem"
    chain.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_file, chain


@contextmanager
def smtp_server(mode: str = "plain", folder: Path | None = None) -> Iterator[Server]:
    """mode: "plain" (smtp://), "starttls" (smtp+starttls:// with AUTH required) or
    "tls" (smtps:// with AUTH offered)."""
    catcher = Catcher()
    port = free_port()
    kwargs: dict = {}
    ca_file = None
    if mode != "plain":
        assert folder is not None
        ca, chain = write_certificate(folder)
        ca_file = str(ca)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain)
        kwargs.update(authenticator=_authenticate)
        if mode == "starttls":
            kwargs.update(tls_context=context, require_starttls=True, auth_required=True)
        else:
            # The whole connection is TLS, but aiosmtpd counts only STARTTLS as TLS for
            # AUTH: let it offer AUTH (a wrong password is still refused).
            kwargs.update(ssl_context=context, auth_require_tls=False)
    controller = Controller(catcher, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    scheme = {"plain": "smtp", "starttls": "smtp+starttls", "tls": "smtps"}[mode]
    credentials = "" if mode == "plain" else "relay-user:relay%20p%40ss%3Aword@"
    try:
        yield Server(f"{scheme}://{credentials}127.0.0.1:{port}", catcher, ca_file)
    finally:
        controller.stop()
