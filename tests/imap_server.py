"""A real IMAP server on loopback for the tests: pymap's in-memory (`dict`) backend,
served from a thread of its own, with one account. It speaks plain IMAP, STARTTLS
or implicit TLS with a certificate of a private CA (tests/smtp_server.py makes it),
and can leave MOVE out of its capabilities, as servers without RFC 6851 do.

The tests deliver mail with APPEND and look at the folders with their own imaplib
client, as a person's mail client would."""

from __future__ import annotations

import asyncio
import imaplib
import ssl
import threading
from argparse import Namespace
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from proxyprotocol.reader import ProxyProtocolReader
from pymap.backend.dict import Config, DictBackend, Login
from pymap.imap import IMAPServer
from smtp_server import free_port, write_certificate

USER, PASSWORD = "unsubscribe@news.example.org", "mail p@ss:word/1"


class _NoMoveConfig(Config):
    """A server without MOVE or UIDPLUS: clients fall back to COPY and EXPUNGE."""

    @property
    def login_capability(self) -> Sequence[bytes]:
        return [cap for cap in super().login_capability if cap not in (b"MOVE", b"UIDPLUS")]


@dataclass
class ImapServer:
    port: int
    mode: str
    ca_file: str | None

    @property
    def scheme(self) -> str:
        return {"plain": "imap", "starttls": "imap+starttls", "tls": "imaps"}[self.mode]

    def url(self, folder: str = "INBOX", password: str = PASSWORD) -> str:
        account = f"{quote(USER, safe='')}:{quote(password, safe='')}"
        return f"{self.scheme}://{account}@127.0.0.1:{self.port}/{quote(folder)}"

    @contextmanager
    def client(self) -> Iterator[imaplib.IMAP4]:
        """A logged-in client of the test's own, as a person's mail program."""
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.mode == "tls":
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                "127.0.0.1", self.port, ssl_context=context, timeout=10
            )
        else:
            client = imaplib.IMAP4("127.0.0.1", self.port, timeout=10)
            if self.mode == "starttls":
                client.starttls(ssl_context=context)
        client.login(USER, PASSWORD)
        try:
            yield client
        finally:
            client.logout()

    def deliver(self, raw: bytes, folder: str = "INBOX") -> None:
        with self.client() as client:
            typ, data = client.append(f'"{folder}"', None, None, raw)
            assert typ == "OK", data

    def messages(self, folder: str) -> list[bytes]:
        """The messages in `folder` not flagged deleted, oldest first; [] when the
        folder does not exist."""
        with self.client() as client:
            typ, _data = client.select(f'"{folder}"', readonly=True)
            if typ != "OK":
                return []
            _typ, found = client.uid("SEARCH", "UNDELETED")
            uids = found[0].split() if found and found[0] else []
            raw = []
            for uid in uids:
                _typ, parts = client.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
                raw.extend(bytes(part[1]) for part in parts if isinstance(part, tuple))
            return raw


async def _serve(
    port: int,
    mode: str,
    chain: Path | None,
    move: bool,
    ready: threading.Event,
    stop: asyncio.Event,
) -> None:
    args = Namespace(
        host="127.0.0.1",
        port=port,
        debug=False,
        cert=None,
        key=None,
        tls=mode == "starttls",
        proxy_protocol=None,
        passlib_cfg=None,
        demo_data=False,
        demo_user=USER,
        demo_password=PASSWORD,
        inherited_sockets=None,
    )
    context = None
    if chain is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain)
    config_type = Config if move else _NoMoveConfig
    # DictBackend.init, with the config type chosen here.
    config = config_type.from_args(args, ssl_context=context, invalid_user_sleep=0.0)
    login = Login(config)
    await DictBackend._add_demo_user(config, login)
    backend = DictBackend(login, config)
    config.apply_context()
    handler = ProxyProtocolReader(config.proxy_protocol).get_callback(
        IMAPServer(backend.login, config)
    )
    server = await asyncio.start_server(
        handler, "127.0.0.1", port, ssl=context if mode == "tls" else None
    )
    async with server:
        ready.set()
        await stop.wait()


@contextmanager
def imap_server(
    mode: str = "plain", folder: Path | None = None, move: bool = True
) -> Iterator[ImapServer]:
    """mode: "plain" (imap://), "starttls" (imap+starttls://: log-in only after
    STARTTLS) or "tls" (imaps://); `folder` holds the certificates for the last two."""
    port = free_port()
    chain = ca_file = None
    if mode != "plain":
        assert folder is not None
        ca, chain = write_certificate(folder)
        ca_file = str(ca)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()
    failed: list[BaseException] = []

    def run() -> None:
        try:
            loop.run_until_complete(_serve(port, mode, chain, move, ready, stop))
        except BaseException as exc:
            failed.append(exc)
            ready.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="imap-server", daemon=True)
    thread.start()
    ready.wait(30)
    if failed:
        raise failed[0]
    try:
        yield ImapServer(port, mode, ca_file)
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
