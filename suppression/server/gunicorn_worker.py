"""The gunicorn worker the service runs on (`gunicorn.conf.py` names it).

gunicorn's threaded worker (`gthread`) hands a connection to a thread as soon as
it has any bytes to read, and that thread then blocks until the request's line
and headers are complete: a client that sends half a request and stalls holds a
thread for as long as it likes, and a handful of them hold every thread. This
worker reads request heads in its main loop instead, without a thread, and hands
a connection to the pool only when the head is complete. A head must arrive
within `header_timeout` seconds of its first byte (of the connection, for a new
one); a client that is slower, even one that keeps trickling bytes, is answered
`408` and dropped. A head larger than `max_head_bytes` is answered `431`.

Once a request runs, a read of its body or a write of its answer that waits
longer than `io_timeout` for the client ends it: a stalled body is answered
`408` (the body reader raises werkzeug's RequestTimeout into the app), a client
that stops reading its answer is disconnected. The timeout is per read or write,
as nginx's `client_body_timeout` and `send_timeout` are, so a large upload over
a slow link is never cut while bytes keep coming.

TLS, the PROXY protocol, uWSGI and HTTP/2 prior knowledge are left to gunicorn's
own path (heads read in threads): the service runs behind a TLS proxy and uses
none of them.

This module is imported by gunicorn's master process to find the worker class,
so it imports nothing of the application.
"""

from __future__ import annotations

import contextlib
import selectors
import ssl
import time
from collections import deque
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

# Read a head in pieces of this size; a head holds a few hundred bytes.
HEAD_CHUNK = 8192
# Where a request head ends: CRLF CRLF, or a bare LF the parser will refuse at once.
HEAD_ENDS = (b"\n\r\n", b"\n\n")


class SlowClientWorker(ThreadWorker):
    """gthread, with request heads read outside the thread pool under a deadline,
    and a limit on how long a body read or an answer write waits for the client."""

    header_timeout: float = 10.0
    io_timeout: float = 30.0
    max_head_bytes: int = 64 * 1024
    # Set by gunicorn's load_wsgi: the application it calls.
    wsgi: Callable[..., Any]

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # Connections whose head is being read, oldest deadline first (every
        # deadline is its start plus the same timeout, so appending keeps order).
        self.heads: deque[Any] = deque()
        cfg = self.cfg
        self.reads_heads = not (
            cfg.is_ssl
            or getattr(cfg, "protocol", "http") != "http"
            or getattr(cfg, "proxy_protocol", "off") not in ("off", False, None)
            or getattr(cfg, "http2_cleartext", "off") in ("prior-knowledge", "both")
        )

    # --- the request body and the answer -------------------------------------

    def load_wsgi(self) -> None:
        super().load_wsgi()
        self.wsgi = _BodyTimeouts(self.wsgi)

    def handle_request(self, req: Any, conn: Any) -> bool:
        conn.sock.settimeout(self.io_timeout)
        try:
            return super().handle_request(req, conn)
        except TimeoutError:
            # The client stopped reading the answer (a stalled body is answered 408
            # by the app, see _TimedBody): nothing more can be sent on this one.
            self.log.info("closed a connection whose client read nothing for %g s", self.io_timeout)
            return False

    # --- request heads, read by the main loop ---------------------------------

    def enqueue_req(self, conn: Any) -> None:
        """Every way a connection reaches the thread pool passes here (a new
        connection, a kept-alive one with bytes to read, pipelined bytes left after
        an answer): a thread gets it once its request head is complete."""
        if not self.reads_heads or getattr(conn, "head_complete", False):
            conn.head_complete = False  # the next request on it is read here again
            super().enqueue_req(conn)
            return
        held = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        conn.head = bytearray(held)
        conn.head_scanned = 0  # where the search for the head's end goes on from
        conn.head_deadline = time.monotonic() + self.header_timeout
        conn.sock.setblocking(False)
        self.heads.append(conn)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._read_head, conn))
        self._read_head(conn, conn.sock)  # bytes that are already there

    def _read_head(self, conn: Any, _sock: Any) -> None:
        closed = False
        try:
            data = conn.sock.recv(HEAD_CHUNK)
        except (BlockingIOError, InterruptedError):
            data = b""
        except OSError:
            data, closed = b"", True
        else:
            closed = not data
        conn.head += data
        start, conn.head_scanned = max(0, conn.head_scanned - 2), len(conn.head)
        if any(conn.head.find(end, start) >= 0 for end in HEAD_ENDS):
            self._hand_over(conn)
        elif len(conn.head) > self.max_head_bytes:
            self._refuse(conn, b"431 Request Header Fields Too Large")
        elif closed:
            self._forget(conn)
            self._close(conn)

    def _hand_over(self, conn: Any) -> None:
        self._forget(conn)
        head, conn.head = bytes(conn.head), None
        conn.init()  # a new connection's parser (a kept-alive one has its own)
        conn.parser.unreader.unread(head)
        conn.sock.setblocking(True)
        conn.data_ready = True
        conn.head_complete = True
        self.enqueue_req(conn)

    def _forget(self, conn: Any) -> None:
        self.poller.unregister(conn.sock)
        self.heads.remove(conn)

    def _refuse(self, conn: Any, status: bytes) -> None:
        self._forget(conn)
        if not isinstance(conn.sock, ssl.SSLSocket):
            # A client that is gone or not reading is dropped all the same.
            with contextlib.suppress(OSError):
                conn.sock.send(
                    b"HTTP/1.1 " + status + b"\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                )
        self._close(conn)

    def _close(self, conn: Any) -> None:
        self.nr_conns -= 1
        conn.close()

    def murder_keepalived(self, force: bool = False) -> None:
        """Called by the main loop about once a second: also drop heads past their
        deadline (all of them when the worker stops)."""
        super().murder_keepalived(force)
        now = time.monotonic()
        while self.heads and (force or self.heads[0].head_deadline <= now):
            conn = self.heads[0]
            if not force:
                self.log.info(
                    "dropped a client that sent no complete request head within %g s",
                    self.header_timeout,
                )
            self._refuse(conn, b"408 Request Timeout")


class _BodyTimeouts:
    """WSGI middleware: the request body of each request through `_TimedBody`, and
    a connection whose body stopped arriving closed right after its answer (the
    rest of that body will not come: nothing to wait for and drain)."""

    def __init__(self, app: Callable[..., Any]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"] = _TimedBody(environ["wsgi.input"])

        def answer(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            response = getattr(start_response, "__self__", None)  # gunicorn's Response
            if body.timed_out and response is not None and hasattr(response, "force_close"):
                response.force_close()
            return start_response(status, headers, exc_info)

        return self.app(environ, answer)


class _TimedBody:
    """gunicorn's body reader, where a read that timed out (the socket's io_timeout)
    is werkzeug's RequestTimeout: the app answers 408 instead of failing with 500."""

    def __init__(self, body: Any):
        self._body = body
        self.timed_out = False

    def _guarded(self, read: Callable[..., Any], *args: Any) -> Any:
        try:
            return read(*args)
        except TimeoutError:
            self.timed_out = True
            from werkzeug.exceptions import RequestTimeout  # only here: see the module doc

            raise RequestTimeout("The request body stopped arriving.") from None

    def read(self, size: int | None = None) -> bytes:
        return self._guarded(self._body.read, size)

    def readline(self, size: int | None = None) -> bytes:
        return self._guarded(self._body.readline, size)

    def readlines(self, size: int | None = None) -> list[bytes]:
        return self._guarded(self._body.readlines, size)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        return self._guarded(self._body.__next__)
