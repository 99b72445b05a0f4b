"""Unsubscribe mails (RFC 2369 `mailto:`): what one raw RFC 5322 message says.

A client that follows the `List-Unsubscribe` mailto sends a mail to the mailbox
with the subject `unsubscribe <token>`, or (UNSUBSCRIBE_MAILBOX_PLUS) to
`local+<token>@domain`; some clients put the subject's text in the body instead.
The token names the recipient whatever alias the mail is sent from. Without one,
the `From` address may stand for the person only when the receiving server's
Authentication-Results show that its domain signed or aligned the mail (DKIM or
DMARC pass); a bare `From` is trivially forged.

Only the topmost Authentication-Results header is read: the receiving server adds
its own at the top (RFC 8601 section 5), and those below it came with the mail.

Nothing here keeps the body: it is searched for a token and dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.errors import HeaderParseError, MessageError
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses

# A link token is base64url without padding; the shortest is well over 40 characters.
TOKEN_PATTERN = r"[A-Za-z0-9_-]{40,}"
_SUBJECT_TOKEN = re.compile(rf"\bunsubscribe\s+({TOKEN_PATTERN})", re.IGNORECASE)
_BODY_TOKEN = re.compile(rf"(?<![A-Za-z0-9_-])({TOKEN_PATTERN})(?![A-Za-z0-9_-])")
_PLUS_TOKEN = re.compile(rf"\+({TOKEN_PATTERN})$")
# Only so much of a body is searched: the token is in its first lines.
MAX_BODY_CHARS = 64 * 1024
MAX_EVIDENCE_CHARS = 1000
_RESULT = re.compile(r"^\s*(dkim|dmarc)\s*=\s*([a-z]+)\b(.*)$", re.IGNORECASE | re.DOTALL)
_PROPERTY = re.compile(r"\b(header\.[a-z]+)\s*=\s*\"?([^\s;\"]+)", re.IGNORECASE)
_COMMENT = re.compile(r"\([^()]*\)")


class UnreadableMail(ValueError):
    """Not an RFC 5322 message: no headers could be read from it."""


@dataclass(frozen=True)
class InboundMail:
    tokens: tuple[str, ...]  # candidates, in the order they are tried
    sender: str | None  # the single From address, as written
    authenticated_by: str | None  # "dmarc" or "dkim" when the From domain passed
    message_id: str | None
    date: str | None
    authentication_results: str | None  # the topmost header, as the server wrote it


def read_mail(raw: bytes) -> InboundMail:
    """What an unsubscribe mail carries; raises UnreadableMail for what is not a mail."""
    if not raw.strip():
        raise UnreadableMail("the body is empty")
    try:
        message = message_from_bytes(raw, policy=policy.default)
        if not isinstance(message, EmailMessage) or not message.keys():
            raise UnreadableMail("no header fields")
        sender = _sender(message)
        results = _header(message, "Authentication-Results")
        return InboundMail(
            tokens=_tokens(message),
            sender=sender,
            authenticated_by=authenticated_by(results, sender) if sender else None,
            message_id=_evidence(_header(message, "Message-ID")),
            date=_evidence(_header(message, "Date")),
            authentication_results=_evidence(results),
        )
    # The parser meets hostile input: what it raises on a malformed one is not a 500.
    except (MessageError, HeaderParseError, LookupError, TypeError, ValueError) as error:
        raise UnreadableMail(str(error) or type(error).__name__) from None


def _header(message: EmailMessage, name: str) -> str | None:
    value = message.get(name)
    return None if value is None else " ".join(str(value).split())


def _evidence(value: str | None) -> str | None:
    return value[:MAX_EVIDENCE_CHARS] if value else None


def _tokens(message: EmailMessage) -> tuple[str, ...]:
    found: list[str] = []
    subject = _SUBJECT_TOKEN.search(_header(message, "Subject") or "")
    if subject:
        found.append(subject.group(1))
    recipients = [
        str(value) for name in ("To", "Delivered-To") for value in message.get_all(name) or ()
    ]
    for _name, address in getaddresses(recipients):
        plus = _PLUS_TOKEN.search(address.rpartition("@")[0])
        if plus:
            found.append(plus.group(1))
    body = _body_text(message)
    first = _BODY_TOKEN.search(body) if body else None
    if first:
        found.append(first.group(1))
    return tuple(dict.fromkeys(found))


def _addresses(message: EmailMessage, name: str) -> list[Address]:
    addresses: list[Address] = []
    for header in message.get_all(name) or ():
        addresses.extend(getattr(header, "addresses", ()))  # none when unparsable
    return addresses


def _body_text(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain", "html"))
    if part is None or not isinstance(part, EmailMessage):
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):
        return ""
    return content[:MAX_BODY_CHARS] if isinstance(content, str) else ""


def _sender(message: EmailMessage) -> str | None:
    addresses = _addresses(message, "From")
    if len(addresses) != 1 or not addresses[0].domain:
        return None
    return addresses[0].addr_spec


def authenticated_by(results: str | None, sender: str) -> str | None:
    """ "dmarc" when the results show a DMARC pass for the sender's domain, else
    "dkim" for a DKIM pass whose signing domain (header.d, or header.i's) is that
    domain, else None."""
    if not results:
        return None
    domain = sender.rpartition("@")[2].lower()
    passed: set[str] = set()
    # The first element is the authserv-id; then one result a `;`.
    for element in _COMMENT.sub(" ", results).split(";")[1:]:
        match = _RESULT.match(element)
        if match is None or match.group(2).lower() != "pass":
            continue
        method = match.group(1).lower()
        properties = {k.lower(): v.lower() for k, v in _PROPERTY.findall(match.group(3))}
        if method == "dmarc":
            aligned = properties.get("header.from", domain) == domain
        else:
            aligned = _signed_by(properties, domain)
        if aligned:
            passed.add(method)
    return "dmarc" if "dmarc" in passed else "dkim" if "dkim" in passed else None


def _signed_by(properties: dict[str, str], domain: str) -> bool:
    signer = properties.get("header.d")
    identity = properties.get("header.i")
    return signer == domain or (identity is not None and identity.rpartition("@")[2] == domain)
