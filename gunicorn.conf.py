"""gunicorn's settings for the service.

gunicorn reads this file from its working directory by default, so the
Procfile's `web: gunicorn wsgi:app` and a plain `gunicorn wsgi:app` run from the
project root use it; `suppression serve` passes it with `--config`, from any
directory. Command-line flags still win (`suppression serve --host/--port/--workers`).
Every value below can be changed from the environment.

- `GUNICORN_BIND` (default `0.0.0.0:$PORT`, `PORT` defaulting to 8000): where to listen
- `WEB_CONCURRENCY` (2): worker processes
- `GUNICORN_THREADS` (4): request threads per worker
- `GUNICORN_HEADER_TIMEOUT` (10): seconds a client has to send a request's line and headers
- `GUNICORN_IO_TIMEOUT` (30): seconds one read of a request body, or one write of
  an answer, may wait for the client
- `GUNICORN_KEEPALIVE` (5): seconds an idle kept-alive connection stays open
- `GUNICORN_WORKER_CONNECTIONS` (1000): connections a worker holds at once, kept-alive
  ones at most this less the threads
- `GUNICORN_TIMEOUT` (120): seconds a worker's main loop may go silent before
  gunicorn replaces the worker
- `GUNICORN_ACCESS_LOG` (none): `-` logs each request to standard output, link
  tokens redacted
- `PROMETHEUS_MULTIPROC_DIR` (a new temporary folder each start): where the workers
  keep their metrics, so that /metrics adds up every worker's numbers

The worker (suppression/server/gunicorn_worker.py) is gunicorn's threaded worker that reads
request heads without a thread: clients that send half a request and stall
cost a socket each, not a thread, and are dropped after the header timeout.
This file imports nothing of the application: gunicorn's master reads it.
"""

import os
import shutil
import tempfile


def _number(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    try:
        number = float(value) if value else default
    except ValueError:
        raise SystemExit(f"{name} must be a number of seconds or a count, not {value!r}") from None
    if number <= 0:
        raise SystemExit(f"{name} must be greater than 0")
    return number


bind = [os.environ.get("GUNICORN_BIND") or f"0.0.0.0:{os.environ.get('PORT') or 8000}"]
workers = int(_number("WEB_CONCURRENCY", 2))
worker_class = "suppression.server.gunicorn_worker.SlowClientWorker"
threads = int(_number("GUNICORN_THREADS", 4))
worker_connections = int(_number("GUNICORN_WORKER_CONNECTIONS", 1000))
keepalive = int(_number("GUNICORN_KEEPALIVE", 5))
timeout = int(_number("GUNICORN_TIMEOUT", 120))
graceful_timeout = 30
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# gunicorn's control socket has one default path per user ($HOME/.gunicorn/gunicorn.ctl),
# so a second instance on the host (a test, a benchmark) would take over the first's.
control_socket_disable = True

_HEADER_TIMEOUT = _number("GUNICORN_HEADER_TIMEOUT", 10)
_IO_TIMEOUT = _number("GUNICORN_IO_TIMEOUT", 30)
_made_for_metrics: list[str] = []


def on_starting(server):
    """Before the workers are forked: /metrics adds up the numbers of every worker
    (prometheus_client's multiprocess mode) from files in a folder of their own.
    `suppression serve` gives one in the instance folder."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        _made_for_metrics.append(tempfile.mkdtemp(prefix="suppression-metrics-"))
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = _made_for_metrics[-1]


def on_exit(server):
    for folder in _made_for_metrics:
        shutil.rmtree(folder, ignore_errors=True)


def post_fork(server, worker):
    """The two timeouts gunicorn has no setting for, given to each worker."""
    worker.header_timeout = _HEADER_TIMEOUT
    worker.io_timeout = _IO_TIMEOUT
