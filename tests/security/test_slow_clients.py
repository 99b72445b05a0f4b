"""Slow clients do not stop the service: the real server (`suppression serve`,
gunicorn with gunicorn.conf.py) on loopback, against sockets that send half a
request and stall, one that trickles a head byte by byte, and one that stalls in
its body. /healthz, a one-click and an API call still answer at once; the
stalled clients are answered 408 and dropped after the timeouts."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from gunicorn_server import Served
from log_guard import find_addresses, find_secrets

# The server runs in processes of its own.
pytestmark = pytest.mark.committed

HEADER_TIMEOUT = 3.0
IO_TIMEOUT = 2.0
WORKERS, THREADS = 2, 2
PROMPT = 2.0  # seconds: "at once", with room for a busy machine


@pytest.fixture
def server_env(database_url, key_env, admin, tmp_path: Path) -> dict[str, str]:
    # With an admin key in the store, `serve` prints none: its output is the server's.
    return {
        **key_env,
        "SUPPRESSION_ENV": "development",
        "SUPPRESSION_INSTANCE": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "CHECK_PROCESSES": "0",
        "PUBLIC_RATE_LIMIT": "100000 per minute",
        "GUNICORN_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
        "GUNICORN_IO_TIMEOUT": str(IO_TIMEOUT),
        "GUNICORN_THREADS": str(THREADS),
        "WEB_CONCURRENCY": "5",  # `serve --workers` wins over it
        "GUNICORN_ACCESS_LOG": "-",
    }


def call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    """(status, body, seconds) of one request on its own connection."""
    request = urllib.request.Request(url, data=body, headers=headers or {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=PROMPT + 1) as answer:
            return answer.status, answer.read(), time.monotonic() - started
    except urllib.error.HTTPError as error:
        return error.code, error.read(), time.monotonic() - started


def stall(port: int, head: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(head)
    sock.setblocking(False)
    return sock


def unanswered(sock: socket.socket) -> bool:
    """Still open, and nothing sent to it yet (a byte or an EOF would be readable)."""
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    return False


def answer_of(sock: socket.socket, deadline: float) -> tuple[bytes, float]:
    """What the server answers until it closes the connection, and when its answer
    began to arrive."""
    sock.setblocking(True)
    sock.settimeout(max(0.1, deadline - time.monotonic()))
    received = sock.recv(4096)
    arrived = time.monotonic()
    while chunk := sock.recv(4096):
        received += chunk
    return received, arrived


def trickle(port: int, stop: threading.Event, record: dict[str, float | bytes]) -> None:
    """A client that never stops sending its head, one byte every 0.2 s."""
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 400
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(0.2)
        started = time.monotonic()
        for byte in head:
            if stop.is_set():
                return
            try:
                sock.send(bytes((byte,)))
                answer = sock.recv(200)
            except TimeoutError:
                continue
            except OSError:
                answer = b""
            record.update(answer=answer, seconds=time.monotonic() - started)
            return


@pytest.mark.slow
def test_half_sent_requests_neither_stop_the_service_nor_outlast_the_header_timeout(
    server_env, sender, tmp_path
):
    with Served(server_env, tmp_path, "--workers", str(WORKERS), workers=WORKERS) as server:
        assert len(server.worker_pids()) == WORKERS
        links = json.loads(
            call(
                server.base + "/v1/unsubscribe-links",
                json.dumps({"recipients": ["slow-a@example.com", "slow-b@example.com"]}).encode(),
                {**sender, "Content-Type": "application/json"},
            )[1]
        )["links"]
        one_click_path = "/u/" + links[0]["url"].rsplit("/u/", 1)[1]

        # Three times as many stalled requests as the server has threads, of
        # every kind it serves, each cut off in the middle of its head.
        halves = [
            b"POST " + one_click_path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le",
            b"POST /v1/consents HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthoriz",
            b"GET /healthz HTTP/1.1\r\n",
            b"GET /admin/ HTT",
        ]
        opened = time.monotonic()
        stalled = [
            stall(server.port, halves[i % len(halves)]) for i in range(3 * WORKERS * THREADS)
        ]
        stop = threading.Event()
        trickled: dict[str, float | bytes] = {}
        trickler = threading.Thread(target=trickle, args=(server.port, stop, trickled))
        trickler.start()
        time.sleep(0.3)  # every stalled head has reached the server

        health = call(server.base + "/healthz")
        one_click = call(
            server.base + one_click_path,
            b"List-Unsubscribe=One-Click",
            {"Content-Type": "application/x-www-form-urlencoded"},
        )
        consent = call(
            server.base + "/v1/consents",
            json.dumps(
                {
                    "email": "slow-b@example.com",
                    "purpose": "all",
                    "status": "opted_out",
                    "source": "slow_client_test",
                }
            ).encode(),
            {**sender, "Content-Type": "application/json"},
        )
        assert (health[0], one_click[0], consent[0]) == (200, 200, 201)
        assert max(health[2], one_click[2], consent[2]) < PROMPT
        # ...while every stalled client was still connected and waiting.
        assert time.monotonic() - opened < HEADER_TIMEOUT
        assert all(unanswered(sock) for sock in stalled)

        for sock in stalled:
            answer, closed_at = answer_of(sock, opened + HEADER_TIMEOUT + 5)
            assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
            assert HEADER_TIMEOUT - 0.5 <= closed_at - opened <= HEADER_TIMEOUT + 3
            sock.close()
        trickler.join(timeout=HEADER_TIMEOUT + 5)
        stop.set()
        assert trickled["answer"].startswith(b"HTTP/1.1 408")  # type: ignore[union-attr]
        assert HEADER_TIMEOUT - 0.5 <= trickled["seconds"] <= HEADER_TIMEOUT + 3  # type: ignore[operator]
        assert call(server.base + "/healthz")[0] == 200
        # A request line gunicorn refuses is logged, its token redacted.
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + 3) as sock:
            sock.sendall(b"GET " + one_click_path.encode() + b"\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")
    output = server.output()
    assert "Using worker: suppression.server.gunicorn_worker.SlowClientWorker" in output
    assert "dropped a client that sent no complete request head within 3 s" in output
    # gunicorn's access log names the link by its kind only.
    assert '"POST /u/[token] HTTP/1.1" 200' in output
    assert "Invalid HTTP request line: 'GET /u/[token]'" in output
    assert find_secrets(output) == []
    assert find_addresses(output) == []


@pytest.mark.slow
def test_a_stalled_body_is_answered_408_after_the_io_timeout_and_frees_its_thread(
    server_env, sender, tmp_path
):
    env = {**server_env, "GUNICORN_THREADS": "1"}
    with Served(env, tmp_path, "--workers", "1", workers=1) as server:
        head = (
            "POST /v1/consents HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: {sender['Authorization']}\r\n"
            "Content-Type: application/json\r\nContent-Length: 200\r\n\r\n"
        ).encode()
        started = time.monotonic()
        sock = stall(server.port, head + b'{"email": "slow-body@exa')
        answer, answered_at = answer_of(sock, started + IO_TIMEOUT + 8)
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["code"] == 408
        assert IO_TIMEOUT - 0.5 <= answered_at - started <= IO_TIMEOUT + 3
        # The one thread is free again.
        status, _body, seconds = call(server.base + "/healthz")
        assert status == 200
        assert seconds < PROMPT
    assert find_secrets(server.output()) == []


def read_answers(sock: socket.socket, count: int) -> list[bytes]:
    """`count` whole answers (head and Content-Length body) from one connection."""
    received, found = b"", []
    while len(found) < count:
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            assert chunk, f"closed after {received!r}"
            received += chunk
        head, _, rest = received.partition(b"\r\n\r\n")
        length = re.search(rb"Content-Length: (\d+)", head, re.IGNORECASE)
        assert length, head
        while len(rest) < int(length.group(1)):
            rest += sock.recv(4096)
        found.append(head + b"\r\n\r\n" + rest[: int(length.group(1))])
        received = rest[int(length.group(1)) :]
    return found


@pytest.mark.slow
def test_kept_alive_pipelined_and_split_requests_are_answered_and_oversized_heads_refused(
    server_env, tmp_path
):
    request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with Served(server_env, tmp_path, "--workers", "1", workers=1) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + 3) as sock:
            # Two requests in one packet, then a third on the same kept-alive
            # connection, then one whose head arrives in two pieces.
            sock.sendall(request + request)
            answers = read_answers(sock, 2)
            sock.sendall(request)
            answers += read_answers(sock, 1)
            sock.sendall(request[:20])
            time.sleep(0.5)
            sock.sendall(request[20:])
            answers += read_answers(sock, 1)
        assert len(answers) == 4
        assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
        assert all(a.endswith(b'{"status":"ok"}\n') for a in answers)
        # A head over 64 KiB, and one with bare LF line ends: refused at once.
        huge = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"a" * 70_000 + b"\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + 3) as sock:
            sock.sendall(huge)
            assert sock.recv(4096).startswith(b"HTTP/1.1 431 ")
        with socket.create_connection(("127.0.0.1", server.port), timeout=PROMPT + 3) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 400 ")


@pytest.mark.slow
def test_a_client_that_stops_reading_its_answer_is_dropped_after_the_io_timeout(
    server_env, sender, tmp_path
):
    env = {**server_env, "GUNICORN_THREADS": "1"}
    addresses = [f"reader-{i}@example.com" for i in range(100_000)]
    body = json.dumps({"purpose": "email_marketing", "addresses": addresses}).encode()
    with Served(env, tmp_path, "--workers", "1", workers=1) as server:
        reader = socket.socket()
        reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills at once
        reader.connect(("127.0.0.1", server.port))
        reader.sendall(
            (
                "POST /v1/checks?detail=all HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: {sender['Authorization']}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode()
            + body
        )
        # The ~6 MB answer outgrows what the sockets buffer; nobody reads it. The one
        # thread is free again once a write has waited IO_TIMEOUT.
        deadline = time.monotonic() + 60
        while "closed a connection whose client read nothing" not in server.output():
            assert time.monotonic() < deadline, server.output()[-2000:]
            time.sleep(0.2)
        status, _body, seconds = call(server.base + "/healthz")
        reader.close()
        assert status == 200
        assert seconds < PROMPT
