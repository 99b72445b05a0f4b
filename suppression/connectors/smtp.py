"""The mail relay for double opt-in confirmations: SMTP with the standard library.

`SMTP_URL` names the relay and how to reach it:

- `smtp://host:port` (default port 25): plain SMTP, for a relay on a private network;
- `smtp+starttls://user:pass@host:587`: STARTTLS before anything else is sent, and
  the certificate verified;
- `smtps://user:pass@host:465`: TLS from the first byte (RFC 8314 "implicit TLS").

User name and password are percent-decoded. A relay whose certificate is signed by
a private CA is trusted with `SMTP_CA_FILE`. Failures are sorted into temporary
(retry later) and permanent (this mail will never go), and their messages carry
the SMTP reply code only: a server's reply text often quotes the recipient.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from enum import StrEnum
from urllib.parse import unquote, urlsplit

SCHEMES = {"smtp": 25, "smtp+starttls": 587, "smtps": 465}


class MailFailureKind(StrEnum):
    TEMPORARY = "temporary"  # connection, timeout, 4xx, refused credentials: retry later
    PERMANENT = "permanent"  # 5xx for this recipient or message: it will never go


class MailError(Exception):
    """A mail that was not accepted by the relay. The message holds no address."""

    def __init__(self, kind: MailFailureKind, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class SmtpRelay:
    scheme: str
    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 10.0
    ca_file: str | None = None
    helo_name: str = "localhost"  # how we name ourselves in EHLO

    @classmethod
    def from_url(
        cls,
        url: str,
        timeout: float = 10.0,
        ca_file: str | None = None,
        helo_name: str = "localhost",
    ) -> SmtpRelay:
        """Raises ValueError naming what is wrong (never echoing a password)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            choices = ", ".join(f"{name}://" for name in SCHEMES)
            raise ValueError(f"SMTP_URL must start with one of: {choices}")
        try:
            port = parts.port or SCHEMES[scheme]
        except ValueError:
            raise ValueError("SMTP_URL has a port that is not a number") from None
        if not parts.hostname:
            raise ValueError("SMTP_URL names no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("SMTP_URL is scheme://[user:password@]host[:port] and nothing more")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        return cls(scheme, parts.hostname, port, username, password, timeout, ca_file, helo_name)

    @property
    def encrypted(self) -> bool:
        return self.scheme != "smtp"

    @property
    def has_credentials(self) -> bool:
        return self.username is not None

    def send(self, message: EmailMessage) -> None:
        """Hand one message to the relay; MailError when it was not accepted."""
        try:
            with self._connect() as client:
                if self.scheme == "smtp+starttls":
                    client.starttls(context=self._tls())
                    client.ehlo()
                if self.username is not None:
                    client.login(self.username, self.password or "")
                client.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _text in exc.recipients.values()})
            raise _refused("recipient", codes[0] if codes else 550) from None
        except smtplib.SMTPSenderRefused as exc:
            # The relay refuses our MAIL FROM: configuration, not this person.
            raise MailError(
                MailFailureKind.TEMPORARY, f"sender address refused (SMTP {exc.smtp_code})"
            ) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise MailError(
                MailFailureKind.TEMPORARY, f"credentials refused (SMTP {exc.smtp_code})"
            ) from None
        except smtplib.SMTPResponseException as exc:
            raise _refused("message", exc.smtp_code) from None
        except smtplib.SMTPNotSupportedError:
            raise MailError(
                MailFailureKind.TEMPORARY, "the relay does not offer what SMTP_URL asks for"
            ) from None
        except ssl.SSLError as exc:
            raise MailError(
                MailFailureKind.TEMPORARY, f"TLS failed: {exc.reason or type(exc).__name__}"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(
                MailFailureKind.TEMPORARY, f"relay unreachable: {type(exc).__name__}"
            ) from None

    def _connect(self) -> smtplib.SMTP:
        hostname = self.helo_name
        if self.scheme == "smtps":
            return smtplib.SMTP_SSL(
                self.host,
                self.port,
                local_hostname=hostname,
                timeout=self.timeout,
                context=self._tls(),
            )
        return smtplib.SMTP(self.host, self.port, local_hostname=hostname, timeout=self.timeout)

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def _refused(what: str, code: int) -> MailError:
    kind = MailFailureKind.PERMANENT if 500 <= code < 600 else MailFailureKind.TEMPORARY
    return MailError(kind, f"{what} refused (SMTP {code})")
