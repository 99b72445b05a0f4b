"""The unsubscribe mailbox, read over IMAP with the standard library.

`UNSUBSCRIBE_IMAP_URL` names the server, the account and the folder to read:

- `imaps://user:pass@host[:port]/INBOX` (default port 993): TLS from the first byte;
- `imap+starttls://user:pass@host[:port]/INBOX` (default port 143): STARTTLS before
  the credentials are sent;
- `imap://user:pass@host[:port]/INBOX`: plain, for a server on loopback (production
  refuses it anywhere else: config/mailbox.py).

User name, password and folder are percent-decoded; the folder defaults to INBOX.
Certificates are verified, against `UNSUBSCRIBE_IMAP_CA_FILE` when set (a private CA).

Messages are named by UID (RFC 3501 section 2.3.1.1), which no other client's
work renumbers, and read with BODY.PEEK, which leaves their flags alone. Every
message in the folder not flagged \\Deleted is new to the poller: it moves each one
it has dealt with to another folder, so what is left is what it has not (a person
who opened one in a mail client must not hide it from the poller, as UNSEEN would).
A move is UID MOVE (RFC 6851) where the server offers it; elsewhere COPY, then
\\Deleted and EXPUNGE (UID EXPUNGE with UIDPLUS, RFC 4315), which a crash between
the two can only leave as a copy in both folders, never as a lost message.

Errors say what failed and never echo the password.
"""

from __future__ import annotations

import imaplib
import ipaddress
import re
import ssl
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

SCHEMES = {"imap": 143, "imap+starttls": 143, "imaps": 993}
DEFAULT_FOLDER = "INBOX"
# A message is read up to this many bytes: an unsubscribe mail is a few kilobytes,
# and what names its recipient is in the headers and the body's first lines.
MAX_MESSAGE_BYTES = 1024 * 1024
# Folder names travel as quoted strings: printable ASCII (modified UTF-7 names
# with `&` are fine as the server lists them).
_FOLDER = re.compile(r"[ -~]{1,200}")
_UID = re.compile(rb"\bUID (\d+)")


class MailboxError(Exception):
    """The mailbox could not be read or changed. The message holds no password."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def check_folder(name: str, what: str) -> str:
    """`name` if it can be a folder name; ValueError naming `what` otherwise."""
    if not _FOLDER.fullmatch(name) or name != name.strip():
        raise ValueError(
            f"{what} must be a folder name of 1 to 200 printable ASCII characters, "
            "without spaces at either end"
        )
    return name


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True)
class ImapMailbox:
    scheme: str
    host: str
    port: int
    username: str
    password: str = field(repr=False)
    folder: str = DEFAULT_FOLDER
    timeout: float = 30.0
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str, timeout: float = 30.0, ca_file: str | None = None) -> ImapMailbox:
        """Raises ValueError naming what is wrong (never echoing a password)."""
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in SCHEMES:
            choices = ", ".join(f"{name}://" for name in SCHEMES)
            raise ValueError(f"UNSUBSCRIBE_IMAP_URL must start with one of: {choices}")
        try:
            port = parts.port or SCHEMES[scheme]
        except ValueError:
            raise ValueError("UNSUBSCRIBE_IMAP_URL has a port that is not a number") from None
        if not parts.hostname:
            raise ValueError("UNSUBSCRIBE_IMAP_URL names no host")
        if not parts.username or parts.password is None:
            raise ValueError("UNSUBSCRIBE_IMAP_URL needs the account: scheme://user:password@host")
        if parts.query or parts.fragment:
            raise ValueError("UNSUBSCRIBE_IMAP_URL is scheme://user:password@host[:port][/folder]")
        folder = unquote(parts.path.removeprefix("/")) or DEFAULT_FOLDER
        check_folder(folder, "The folder of UNSUBSCRIBE_IMAP_URL")
        return cls(
            scheme,
            parts.hostname,
            port,
            unquote(parts.username),
            unquote(parts.password),
            folder,
            timeout,
            ca_file,
        )

    @property
    def encrypted(self) -> bool:
        return self.scheme != "imap"

    @property
    def on_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def name(self) -> str:
        """The mailbox as logs and evidence name it: server and folder, no account."""
        return f"imap:{self.host}:{self.port}/{self.folder}"

    @contextmanager
    def open(self) -> Iterator[ImapFolder]:
        """A connection, logged in, with the folder selected; logged out at the end."""
        client = self._connect()
        try:
            try:
                client.login(self.username, self.password)
            except imaplib.IMAP4.error as exc:
                raise MailboxError(f"log-in refused: {_said(exc)}") from None
            except UnicodeError:
                # Its message would quote a character of the password.
                raise MailboxError(
                    "log-in impossible: LOGIN takes an ASCII user and password"
                ) from None
            except OSError as exc:
                raise MailboxError(f"log-in failed: {_said(exc)}") from None
            with _failures("opening the folder"):
                folder = ImapFolder(client, self.folder)
            yield folder
        finally:
            # A connection already gone has nothing left to close.
            with suppress(imaplib.IMAP4.error, OSError):
                client.logout()

    def _connect(self) -> imaplib.IMAP4:
        try:
            if self.scheme == "imaps":
                return imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=self._tls(), timeout=self.timeout
                )
            client = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
            if self.scheme == "imap+starttls":
                try:
                    client.starttls(ssl_context=self._tls())
                except (imaplib.IMAP4.error, OSError):
                    client.shutdown()
                    raise
            return client
        except ssl.SSLError as exc:
            raise MailboxError(f"TLS failed: {exc.reason or type(exc).__name__}") from None
        except (imaplib.IMAP4.error, OSError) as exc:
            raise MailboxError(f"connecting failed: {_said(exc)}") from None

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


class ImapFolder:
    """The folder being read, on one logged-in connection."""

    def __init__(self, client: imaplib.IMAP4, folder: str):
        self.client = client
        self.folder = folder
        data = _ok(client.capability(), "CAPABILITY")
        self.capabilities = frozenset(
            word.decode("ascii", "replace").upper()
            for line in data
            if isinstance(line, bytes)
            for word in line.split()
        )
        _ok(client.select(_quoted(folder)), f"SELECT {folder}")
        self._known: set[str] = set()

    def uids(self) -> list[int]:
        """The UIDs of the messages waiting in the folder, oldest first."""
        with _failures("listing the messages"):
            data = _ok(self.client.uid("SEARCH", "UNDELETED"), "UID SEARCH")
            found = {int(word) for line in data if line for word in line.split()}
        return sorted(found)

    def fetch(self, uid: int) -> bytes | None:
        """The message as stored (up to MAX_MESSAGE_BYTES), or None when it is gone
        (another client moved or expunged it meanwhile)."""
        item = f"(UID BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)"
        with _failures("fetching a message"):
            data = _ok(self.client.uid("FETCH", str(uid), item), "UID FETCH")
        for part in data:
            # A literal comes as (head, bytes); FLAGS updates of other messages as bytes.
            if isinstance(part, tuple) and b"BODY[]" in part[0]:
                named = _UID.search(part[0])
                if named is None or int(named.group(1)) == uid:
                    return bytes(part[1])
        return None

    def move(self, uid: int, to: str) -> None:
        """Move the message to folder `to`, creating that folder when missing."""
        with _failures(f"moving a message to {to}"):
            self._move(uid, to)

    def _move(self, uid: int, to: str) -> None:
        self._ensure(to)
        target = _quoted(to)
        if "MOVE" in self.capabilities:
            _ok(self.client.uid("MOVE", str(uid), target), "UID MOVE")
            return
        _ok(self.client.uid("COPY", str(uid), target), "UID COPY")
        _ok(self.client.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)"), "UID STORE")
        if "UIDPLUS" in self.capabilities:
            _ok(self.client.uid("EXPUNGE", str(uid)), "UID EXPUNGE")
        else:
            # Without UIDPLUS, EXPUNGE also removes what another client flagged \Deleted
            # in this folder: what it asked for anyway.
            _ok(self.client.expunge(), "EXPUNGE")

    def _ensure(self, name: str) -> None:
        if name in self._known:
            return
        listed = _ok(self.client.list('""', _quoted(name)), "LIST")
        if not any(listed):
            typ, data = self.client.create(_quoted(name))
            if typ != "OK":
                # Another poller may have created it meanwhile: fine if it is there now.
                listed = _ok(self.client.list('""', _quoted(name)), "LIST")
                if not any(listed):
                    raise MailboxError(f"CREATE {name} refused: {_text(data)}")
        self._known.add(name)


@contextmanager
def _failures(what: str) -> Iterator[None]:
    """The connection's failures (a dropped socket, a timeout, a server's BAD) as
    MailboxError; a refusal already is one."""
    try:
        yield
    except (imaplib.IMAP4.error, OSError) as exc:
        raise MailboxError(f"{what} failed: {_said(exc)}") from None


def _ok(answer: tuple[str, list[Any]], what: str) -> list[Any]:
    """The answer's data; MailboxError with the server's words when it said NO."""
    typ, data = answer
    if typ != "OK":
        raise MailboxError(f"{what} refused: {_text(data)}")
    return data


def _text(data: list[Any]) -> str:
    first = data[0] if data else b""
    text = first.decode("utf-8", "replace") if isinstance(first, bytes) else str(first or "")
    return text[:200] or "no reason given"


def _said(exc: BaseException) -> str:
    text = str(exc).strip()
    return text[:200] if text else type(exc).__name__
