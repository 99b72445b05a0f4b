"""Load without loss: RFC 8058 one-click unsubscribes under load, a worker killed mid-run.

    .venv/bin/python -m benchmarks.load [--duration 20] [--links 40000] [--connections 8]

gunicorn (`suppression serve --workers 2`, with the project's gunicorn.conf.py: its
worker class and threads, overridable from the environment, e.g. GUNICORN_THREADS)
on a fresh PostgreSQL database on loopback.
wrk (Debian package `wrk`) drives first `GET /healthz` (the bare endpoint: Flask,
no database) and then one-click POSTs to `/u/<token>`, each request a different
token (a different address), for the same time. Halfway through the one-click run
one gunicorn worker is killed with SIGKILL; gunicorn starts a new one.

wrk runs one connection per thread, so its Lua script knows which token each answer
belongs to, and logs every token answered 200. At the end one `POST /v1/checks`
with all the minted addresses must answer `opted_out` for every one of them: the
number lost is printed (target 0), with throughput, p99 and their targets
(one-click ≥ 1/4 of the bare endpoint's requests per second, p99 ≤ 100 ms), and
the CPU time gunicorn's workers spent per request in each phase (not
PostgreSQL's or wrk's): on a machine shared with other
work it moves much less than requests per second do.

`--fold worker` (the default, as the production environment in docs/operating.md
sets ONE_CLICK_FOLD) runs `suppression sync --loop` beside the server, as the
Procfile's worker on the same host: it folds the intake every pass, and its CPU
during the one-click phase and how long after the phase it has folded every
click are printed. `--fold background` folds in a thread of each web worker
instead (its CPU is then in the workers' CPU per request).

The public pages' per-IP rate limits are raised for the run (PUBLIC_RATE_LIMIT,
ONE_CLICK_RATE_LIMIT: all the load comes from 127.0.0.1), and so is the
mass-unsubscribe alarm threshold (it only logs, but would log on every request).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import requests

from benchmarks.server import MemorySampler, Server, SyncWorker
from benchmarks.store import drop_postgresql, recreate_postgresql
from suppression.config.environment import normalise_database_url

RESULTS = Path(__file__).with_name("results")
GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "gunicorn.conf.py"
KEY_ENV = ("ADDRESS_INDEX_KEY", "ADDRESS_SEALING_KEYS", "SECRET_KEY", "DATABASE_URL")
DOMAIN = "load.example"  # .example: an unknown jurisdiction, an opt-out regime

# One connection per wrk thread: request() and response() alternate on it, so the
# pending token is the one answered. A request that got no answer (the worker died,
# the connection reset) is logged as "err" when the next one is made.
LUA = r"""
local tokens = {}
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local dir = os.getenv("LOAD_DIR")
  local step = tonumber(os.getenv("LOAD_THREADS"))
  local i = 0
  for line in io.lines(dir .. "/tokens.txt") do
    if i % step == id then table.insert(tokens, {i, line}) end
    i = i + 1
  end
  log = io.open(dir .. "/answers-" .. id .. ".txt", "w")
  next_index = 1
  pending = nil
  wrapped = 0
end

function request()
  if pending ~= nil then log:write(pending[1], " err\n") end
  if next_index > #tokens then next_index = 1; wrapped = wrapped + 1 end
  pending = tokens[next_index]
  next_index = next_index + 1
  log:write(pending[1], " sent\n")
  return wrk.format("POST", "/u/" .. pending[2],
    {["Content-Type"] = "application/x-www-form-urlencoded"},
    "List-Unsubscribe=One-Click")
end

function response(status, headers, body)
  if pending ~= nil then
    log:write(pending[1], " ", status, "\n")
    log:flush()
    pending = nil
  end
end
"""

SUMMARY_LUA = r"""
function done(summary, latency, requests)
  local f = io.open(os.getenv("LOAD_DIR") .. "/summary-" .. os.getenv("LOAD_PHASE") .. ".json", "w")
  f:write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, ' ..
    '"write_errors": %d, "timeouts": %d, "non_2xx": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d, "mean_us": %.1f}',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
  f:close()
end
"""


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: installing the Debian package (apt-get install -y wrk)")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True)
    found = shutil.which("wrk")
    if not found:
        sys.exit("wrk could not be installed")
    return found


def address(i: int) -> str:
    return f"load-{i:07d}@{DOMAIN}"


def mint(server: Server, key: str, count: int) -> list[str]:
    tokens: list[str] = []
    for start in range(0, count, 50_000):
        recipients = [address(i) for i in range(start, min(count, start + 50_000))]
        answer = requests.post(
            server.base + "/v1/unsubscribe-links",
            json={"campaign": "load-benchmark", "recipients": recipients},
            headers={"Authorization": f"Bearer {key}"},
            timeout=300,
        )
        answer.raise_for_status()
        tokens += [link["url"].rsplit("/u/", 1)[1] for link in answer.json()["links"]]
    return tokens


def run_wrk(wrk: str, server: Server, phase: str, args: argparse.Namespace, work: Path) -> dict:
    script = work / f"{phase}.lua"
    body = (LUA if phase == "one_click" else "") + SUMMARY_LUA
    script.write_text(body)
    env = {
        **os.environ,
        "LOAD_DIR": str(work),
        "LOAD_PHASE": phase,
        "LOAD_THREADS": str(args.connections),
    }
    target = server.base + ("/healthz" if phase == "bare" else "/")
    command = [
        wrk,
        f"-t{args.connections}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        target,
    ]
    with MemorySampler(server, interval=0.2) as sampler:
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    (work / f"wrk-{phase}.txt").write_text(done.stdout + done.stderr)
    summary = json.loads((work / f"summary-{phase}.json").read_text())
    summary["rps"] = summary["requests"] / (summary["duration_us"] / 1e6)
    summary["p99_ms"] = summary["p99_us"] / 1000
    summary["p50_ms"] = summary["p50_us"] / 1000
    summary["server_cpu_seconds"] = sampler.cpu_used
    summary["server_cpu_ms_per_request"] = (
        sampler.cpu_used * 1000 / summary["requests"] if summary["requests"] else 0.0
    )
    return summary


def waiting_clicks(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM one_click_intake").fetchone()
    return int(row[0]) if row else 0


def folded_after(dsn: str, timeout: float = 300.0) -> float | None:
    """Seconds until the intake is empty (every accepted click folded), None if it
    is not within `timeout`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if waiting_clicks(dsn) == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


def killer(server: Server, delay: float, record: dict[str, Any]) -> threading.Thread:
    def run() -> None:
        time.sleep(delay)
        victims = server.worker_pids()
        if not victims:
            record["error"] = "no worker to kill"
            return
        os.kill(victims[0], signal.SIGKILL)
        record.update(killed_pid=victims[0], at_seconds=delay, workers_before=victims)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            now = server.worker_pids()
            if len(now) >= server.workers and victims[0] not in now:
                record["workers_after"] = now
                record["restarted_in_seconds"] = round(time.monotonic() - (deadline - 30), 2)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def answers(work: Path) -> dict[int, str]:
    """Token position -> the last answer it got (status, 'err', or 'unanswered': still
    in flight when wrk stopped)."""
    result: dict[int, str] = {}
    for path in sorted(work.glob("answers-*.txt")):
        for line in path.read_text().splitlines():
            position, _, status = line.partition(" ")
            if status == "sent":
                result.setdefault(int(position), "unanswered")
            elif status:
                result[int(position)] = status
    return result


def verify(server: Server, key: str, count: int) -> set[str]:
    """Every minted address that the store answers opted_out for."""
    answer = requests.post(
        server.base + "/v1/checks",
        json={"purpose": "email_marketing", "addresses": [address(i) for i in range(count)]},
        headers={"Authorization": f"Bearer {key}"},
        timeout=600,
    )
    answer.raise_for_status()
    return {
        entry["email"] for entry in answer.json()["suppressed"] if entry["reason"] == "opted_out"
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=20, help="seconds per phase")
    parser.add_argument("--links", type=int, default=40_000, help="tokens minted (addresses)")
    parser.add_argument("--connections", type=int, default=8, help="wrk threads = connections")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--fold",
        choices=("worker", "background"),
        default="worker",
        help="ONE_CLICK_FOLD: the sync worker folds (run beside the server), or the web workers",
    )
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="bench_load")
    parser.add_argument("--label", default="")
    parser.add_argument("--keep", action="store_true", help="keep the work folder and database")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs
    wrk = ensure_wrk()

    work = Path(tempfile.mkdtemp(prefix="bench-load-"))
    instance = work / "instance"
    dsn = args.pg_admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
    recreate_postgresql(args.pg_admin_url, args.pg_database)
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    raised = {
        "PUBLIC_RATE_LIMIT": "1000000 per minute",
        "ONE_CLICK_RATE_LIMIT": "1000000 per minute",
        "UNSUBSCRIBE_ALARM_THRESHOLD": "100000000",
    }
    env.update(
        SUPPRESSION_ENV="development",
        SUPPRESSION_INSTANCE=str(instance),
        DATABASE_URL=normalise_database_url(dsn),
        ONE_CLICK_FOLD=args.fold,
        **raised,
    )
    env.pop("REDIS_URL", None)  # per-worker in-memory limits: no shared store in the path
    print(f"work folder {work}; database {args.pg_database}; raised for the run: {raised}")
    serving = gunicorn_settings(env, args.workers)
    print(
        f"gunicorn: {serving['worker_class']}, {serving['workers']} workers x "
        f"{serving['threads']} threads, keep-alive {serving['keepalive']} s"
    )
    result: dict[str, Any] = {"load_average_before": os.getloadavg()}
    folding: dict[str, Any] = {"mode": args.fold}
    try:
        with (
            Server(env, args.workers, work / "server.log") as server,
            contextlib.ExitStack() as stack,
        ):
            key = server.create_key("sender", "load-benchmark")
            started = time.perf_counter()
            tokens = mint(server, key, args.links)
            print(f"minted {len(tokens)} links in {time.perf_counter() - started:.1f} s")
            (work / "tokens.txt").write_text("\n".join(tokens) + "\n")
            sync = None
            if args.fold == "worker":
                sync = stack.enter_context(SyncWorker(env, work / "sync.log"))

            print(f"bare endpoint: wrk GET /healthz, {args.duration} s ...")
            bare = run_wrk(wrk, server, "bare", args, work)
            print(
                f"one-click: wrk POST /u/<token>, {args.duration} s, SIGKILL a worker at "
                f"{args.duration / 2:.0f} s ..."
            )
            kill: dict[str, Any] = {}
            thread = killer(server, args.duration / 2, kill)
            sync_cpu = sync.cpu() if sync else 0.0
            one_click = run_wrk(wrk, server, "one_click", args, work)
            if sync:
                folding["waiting_at_end"] = waiting_clicks(dsn)
                folding["sync_cpu_seconds"] = round(sync.cpu() - sync_cpu, 2)
                folding["folded_after_seconds"] = folded_after(dsn)
            thread.join(timeout=35)
            got = answers(work)
            ok = {p for p, status in got.items() if status == "200"}
            errors = {p for p, status in got.items() if status == "err"}
            unanswered = {p for p, status in got.items() if status == "unanswered"}
            other = {p: s for p, s in got.items() if s not in ("200", "err", "unanswered")}
            opted_out = verify(server, key, len(tokens))
            lost = sorted(p for p in ok if address(p) not in opted_out)
            never_sent = set(range(len(tokens))) - set(got)
            stray = sorted(p for p in never_sent if address(p) in opted_out)
            errors_recorded = sum(1 for p in errors if address(p) in opted_out)
    finally:
        if not args.keep:
            drop_postgresql(args.pg_admin_url, args.pg_database)

    ratio = one_click["rps"] / bare["rps"] if bare["rps"] else 0.0
    targets = {
        "throughput_ratio_at_least_0.25": ratio >= 0.25,
        "p99_at_most_100ms": one_click["p99_ms"] <= 100,
        "zero_lost": not lost,
        "worker_killed_and_restarted": "workers_after" in kill,
    }
    print()
    print(
        f"{'endpoint':<22}{'requests':>10}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'max ms':>9}{'non-2xx':>9}{'sock err':>9}{'CPU ms/req':>11}"
    )
    for name, s in (("GET /healthz (bare)", bare), ("POST /u/<token> 1-click", one_click)):
        sock = s["connect_errors"] + s["read_errors"] + s["write_errors"] + s["timeouts"]
        print(
            f"{name:<22}{s['requests']:>10}{s['rps']:>10.0f}{s['p50_ms']:>9.1f}"
            f"{s['p99_ms']:>9.1f}{s['max_us'] / 1000:>9.1f}{s['non_2xx']:>9}{sock:>9}"
            f"{s['server_cpu_ms_per_request']:>11.2f}"
        )
    print()
    print(
        f"worker killed: pid {kill.get('killed_pid')} at {kill.get('at_seconds')} s, "
        f"replaced in {kill.get('restarted_in_seconds')} s"
    )
    print(
        f"one-click answers: {len(ok)} x 200, {len(errors)} without an answer "
        f"({errors_recorded} of them recorded anyway), {len(unanswered)} in flight at the "
        f"end, other statuses {len(other)}"
    )
    print(
        f"tokens used: {len(got)} of {len(tokens)}"
        + (" (wrapped around: some reused)" if len(got) >= len(tokens) else "")
    )
    print(
        f"store: {len(opted_out)} addresses opted_out; answered 200 but not stored "
        f"(lost): {len(lost)}; stored but never sent: {len(stray)}"
    )
    print(
        f"throughput ratio one-click / bare: {ratio:.3f} (target >= 0.25) "
        f"{'PASS' if targets['throughput_ratio_at_least_0.25'] else 'MISS'}"
    )
    print(
        f"one-click p99: {one_click['p99_ms']:.1f} ms (target <= 100 ms) "
        f"{'PASS' if targets['p99_at_most_100ms'] else 'MISS'}"
    )
    print(f"lost: {len(lost)} (target 0) {'PASS' if not lost else 'MISS'}")
    if args.fold == "worker":
        per_click = folding["sync_cpu_seconds"] * 1000 / max(len(ok), 1)
        print(
            f"folding (ONE_CLICK_FOLD=worker): the sync worker used "
            f"{folding['sync_cpu_seconds']:.2f} s of CPU during the one-click phase "
            f"({per_click:.2f} ms a click answered); {folding['waiting_at_end']} clicks "
            f"waited at its end, all folded {folding['folded_after_seconds']} s later"
        )
    else:
        print("folding (ONE_CLICK_FOLD=background): by the web workers, in their CPU ms/req")

    result.update(
        args=vars(args),
        when=datetime.now(UTC).isoformat(),
        load_average_after=os.getloadavg(),
        raised_limits=raised,
        gunicorn=serving,
        bare=bare,
        one_click=one_click,
        kill=kill,
        answered_200=len(ok),
        no_answer=len(errors),
        no_answer_recorded=errors_recorded,
        in_flight_at_end=len(unanswered),
        other_statuses=len(other),
        tokens_used=len(got),
        opted_out_in_store=len(opted_out),
        lost=len(lost),
        lost_examples=lost[:20],
        stored_never_sent=len(stray),
        ratio=ratio,
        folding=folding,
        targets=targets,
        commit=_git("rev-parse", "HEAD"),
        changed=_git("status", "--porcelain", "suppression").splitlines(),
    )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"load-{stamp}{'-' + args.label if args.label else ''}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if not lost and "workers_after" in kill else 1


def gunicorn_settings(env: dict[str, str], workers: int) -> dict[str, Any]:
    """The worker settings the server runs with: gunicorn.conf.py evaluated under
    the server's environment (`--workers` is passed on the command line)."""
    if not GUNICORN_CONFIG.exists():
        return {"worker_class": "sync", "workers": workers, "threads": 1, "keepalive": 0}
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        config = runpy.run_path(str(GUNICORN_CONFIG))
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return {
        "worker_class": config["worker_class"],
        "workers": workers,
        "threads": config["threads"],
        "keepalive": config["keepalive"],
    }


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
