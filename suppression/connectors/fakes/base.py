"""What every fake platform shares: a real HTTP server on loopback, a log of
what it was asked, and faults on demand (an outage, the next N calls failing,
a random share failing, slow answers for timeouts).

Each fake checks what the real platform checks (auth headers, paths, payload
shape, batch limits, hash format), keeps what it was told, and answers in the
platform's own error shape.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass
class Fault:
    """An answer given instead of the real one."""

    status: int = 503
    body: Any = None  # JSON-able, or bytes/str as is
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (longer than a client timeout: a timeout)

    def response(self) -> Response:
        if self.delay:
            time.sleep(self.delay)
        if isinstance(self.body, bytes | str):
            return Response(self.body, self.status, headers=self.headers)
        body = json.dumps(self.body if self.body is not None else {"error": "fault"})
        return Response(body, self.status, headers=self.headers, mimetype="application/json")


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any  # parsed JSON, form dict, or text


class FakePlatform(ABC):
    """A WSGI app; subclasses implement `handle`."""

    name = "fake"

    def __init__(self, keep_requests: bool = True, seed: int = 7):
        self.keep_requests = keep_requests
        self.lock = threading.RLock()
        self.requests: list[Recorded] = []
        self.request_count = 0
        self.faults_served: Counter[int] = Counter()  # status -> calls answered with a fault
        self.faults: deque[Fault] = deque()
        self.outage: Fault | None = None
        self.flaky_rate = 0.0
        self.flaky_fault: Fault | None = None
        self.random = random.Random(seed)
        self.latency = 0.0  # seconds every answer takes (a slower network)

    # Serving -----------------------------------------------------------------

    def start(self) -> FakePlatform:
        """Serve on loopback now; `url` is the server's origin."""
        self.server = FakeServer(self)
        return self

    @property
    def url(self) -> str:
        return self.server.url

    def close(self) -> None:
        self.server.close()

    def __enter__(self) -> FakePlatform:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # Faults ------------------------------------------------------------------

    def fail_next(self, count: int = 1, fault: Fault | None = None, **fault_fields: Any) -> None:
        """The next `count` calls answer with this fault (default 503)."""
        with self.lock:
            for _ in range(count):
                self.faults.append(fault or Fault(**fault_fields))

    def start_outage(self, fault: Fault | None = None, **fault_fields: Any) -> None:
        """Every call fails until end_outage() ("the network plug is pulled")."""
        with self.lock:
            self.outage = fault or Fault(**fault_fields)

    def end_outage(self) -> None:
        with self.lock:
            self.outage = None

    def flaky(self, rate: float, fault: Fault | None = None, **fault_fields: Any) -> None:
        """A share of calls (0..1, seeded) fail with this fault."""
        with self.lock:
            self.flaky_rate = rate
            self.flaky_fault = fault or Fault(**fault_fields)

    def reset_faults(self) -> None:
        with self.lock:
            self.faults.clear()
            self.outage = None
            self.flaky_rate = 0.0

    # WSGI --------------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        request = Request(environ)
        fault = self._take_fault(request)
        if self.latency:
            time.sleep(self.latency)
        if fault is not None:
            response = fault.response()
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a fake bug shows as a 500, like a real server's
                response = Response(f"fake error: {type(exc).__name__}: {exc}", 500)
        return response(environ, start_response)

    def _take_fault(self, request: Request) -> Fault | None:
        with self.lock:
            fault = self._next_fault(request)
            if fault is not None:
                self.faults_served[fault.status] += 1
            return fault

    def _next_fault(self, request: Request) -> Fault | None:
        with self.lock:
            self.request_count += 1
            if self.keep_requests:
                self.requests.append(
                    Recorded(request.method, request.path, dict(request.headers), _body(request))
                )
            if self.outage is not None:
                return self.outage
            if self.faults:
                return self.faults.popleft()
            if self.flaky_rate and self.random.random() < self.flaky_rate:
                return self.flaky_fault
        return None

    @abstractmethod
    def handle(self, request: Request) -> Response:
        """Answer one request as the platform would (each fake defines it)."""

    @staticmethod
    def json_response(
        body: Any, status: int = 200, headers: dict[str, str] | None = None
    ) -> Response:
        return Response(json.dumps(body), status, headers=headers, mimetype="application/json")


def _body(request: Request) -> Any:
    if request.mimetype == "application/json":
        return request.get_json(silent=True)
    if request.mimetype == "application/x-www-form-urlencoded":
        return request.form.to_dict()
    return request.get_data(as_text=True)


def is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and SHA256_HEX.fullmatch(value) is not None


class _QuietHandler(WSGIRequestHandler):
    """HTTP/1.1 keep-alive, and no access log (Keap's paths hold addresses)."""

    protocol_version = "HTTP/1.1"

    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass

    def log(self, *args: Any, **kwargs: Any) -> None:
        pass


class FakeServer:
    """Serves a fake platform on 127.0.0.1 (a free port) in a daemon thread."""

    def __init__(self, app: FakePlatform, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self.server: BaseWSGIServer = make_server(
            host, port, app, threaded=True, request_handler=_QuietHandler
        )
        self.url = f"http://{host}:{self.server.port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-{app.name}",
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
