"""A TCP proxy on loopback between an app under test and its PostgreSQL server,
which can cut the database off and restore it. `cut()` closes every open
connection at once and, until `restore()`, resets each new one as soon as it is
accepted, as a server restart does to its clients; `cut(silent=True)` holds each
new one open without an answer instead, as a host that is down or a network that
drops packets does. The shared PostgreSQL server itself is never touched."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class TcpProxy:
    def __init__(self, host: str, port: int):
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.accepted = 0
        self.listener.settimeout(0.1)  # the accept loop looks at _closed this often
        self._closed = threading.Event()
        self._cut = threading.Event()
        self._silent = False
        self._held: list[socket.socket] = []
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._closed.set()
        self._thread.join(timeout=5)
        self.listener.close()
        self._close_all()

    def cut(self, silent: bool = False) -> None:
        self._silent = silent
        self._cut.set()
        self._close_all()

    def restore(self) -> None:
        self._cut.clear()
        self._close_all()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _peer = self.listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            self.accepted += 1
            if self._cut.is_set():
                if self._silent:
                    with self._lock:
                        self._held.append(client)
                else:
                    _reset(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _reset(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self._open.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                self._close(end)

    def _close_all(self) -> None:
        with self._lock:
            ends = list(self._open)
            held, self._held = self._held, []
        for end in ends:
            self._close(end)
        for client in held:
            _reset(client)

    def _close(self, end: socket.socket) -> None:
        with self._lock:
            self._open.discard(end)
        with contextlib.suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)  # wakes the pump blocked in recv()
        end.close()


def _reset(sock: socket.socket) -> None:
    """Close with a RST: what a client of a server that is going down sees."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()
