"""A real reverse proxy on loopback for the tests: it terminates TLS (a certificate
of a private CA, as smtp_server.py makes), forwards each request over a new
connection to the service behind it, appends the address it was reached from to
X-Forwarded-For (as nginx's $proxy_add_x_forwarded_for does) and sets
X-Forwarded-Proto, and relays the answer.

`Client` is someone in front of it: requests leave from a loopback address of
its own (127.0.0.2, 127.0.0.3, ...: loopback accepts any 127.x address), over TLS
to the proxy, with the cookies the service set.
"""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlencode

from smtp_server import write_certificate

# Headers of one connection (RFC 9110 7.6.1), not passed on by a proxy.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)


class _Forwarding(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request a connection: the answer ends it
    server: _ProxyServer

    def _forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-for"]
        earlier = ", ".join(self.headers.get_all("X-Forwarded-For") or [])
        peer = self.client_address[0]
        headers.append(("X-Forwarded-For", f"{earlier}, {peer}" if earlier else peer))
        headers = [(k, v) for k, v in headers if k.lower() != "x-forwarded-proto"]
        headers.append(("X-Forwarded-Proto", "https"))
        upstream = http.client.HTTPConnection(*self.server.upstream, timeout=30)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers:
                upstream.putheader(name, value)
            upstream.endheaders(body)
            answer = upstream.getresponse()
            content = answer.read()
        finally:
            upstream.close()
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP | {"content-length"}:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_HEAD = _forward

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the service's own log is what the tests read."""


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: tuple[str, int], context: ssl.SSLContext):
        super().__init__(("127.0.0.1", 0), _Forwarding)
        self.upstream = upstream
        self.socket = context.wrap_socket(self.socket, server_side=True)


@dataclass
class Proxy:
    port: int
    ca_file: Path

    def client(self, address: str) -> Client:
        return Client(self, address)


@contextmanager
def reverse_proxy(upstream: tuple[str, int], folder: Path) -> Iterator[Proxy]:
    """A TLS proxy on a free loopback port in front of `upstream` (host, port)."""
    ca_file, chain = write_certificate(folder)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain)
    server = _ProxyServer(upstream, context)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Proxy(server.server_address[1], ca_file)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


@dataclass
class Client:
    """Someone in front of the proxy, at a loopback address of their own."""

    proxy: Proxy
    address: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        json_body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        context = ssl.create_default_context(cafile=str(self.proxy.ca_file))
        connection = http.client.HTTPSConnection(
            "127.0.0.1",
            self.proxy.port,
            source_address=(self.address, 0),
            context=context,
            timeout=30,
        )
        sent = dict(headers or {})
        body: bytes | None = None
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif json_body is not None:
            body = json_body
            sent["Content-Type"] = "application/json"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            connection.request(method, path, body=body, headers=sent)
            response = connection.getresponse()
            text = response.read().decode()
        finally:
            connection.close()
        for cookie in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(cookie).items():
                self.cookies[name] = morsel.value
        return Answer(response.status, response.headers, text)

    def get(self, path: str, **kwargs) -> Answer:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> Answer:
        return self.request("POST", path, **kwargs)
