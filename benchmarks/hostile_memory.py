"""Memory of the server under hostile request bodies: what one request can make it hold.

    .venv/bin/python -m benchmarks.hostile_memory [--db sqlite|postgresql|both]

Each kind of request (bad import rows, JSON lists of zeros or tiny strings, a list
without its purpose, a batch of empty arrays, a CSV check with a large answer) goes
to a freshly started `suppression serve --workers 2`; the server's memory is sampled
every 50 ms while it answers. Prints the answer, the peak PSS growth of the whole
server over its idle reading, the worst RSS growth of one process, and PASS/FAIL
against +150 MB. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

from benchmarks.checks import KEY_ENV, git_state
from benchmarks.server import MemorySampler, Server, pss, rss
from benchmarks.store import drop_postgresql, recreate_postgresql
from suppression.config.environment import normalise_database_url
from suppression.config.settings import DEFAULT_MAX_JSON_BYTES, Settings

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
MB = 1024 * 1024
GROWTH_TARGET = 150 * MB  # peak PSS of the whole server over its idle reading
JSON_SLACK = 4096  # the largest JSON body sent stays this far under MAX_JSON_BYTES
LARGE = 60 * MB  # "about 60 MB" bodies, kept under MAX_JSON_BYTES for the JSON ones
PURPOSE = b'"purpose":"email_marketing"'


# --- request bodies --------------------------------------------------------------


def repeated(prefix: bytes, entry: bytes, suffix: bytes, size: int) -> bytes:
    """prefix + entry,entry,...,entry + suffix, as many entries as fit in `size` bytes."""
    count = max(1, (size - len(prefix) - len(suffix) + 1) // (len(entry) + 1))
    return prefix + (entry + b",") * (count - 1) + entry + suffix


def lines(header: bytes, row: bytes, size: int) -> bytes:
    """A header line, then `row` lines up to about `size` bytes."""
    return header + row * max(1, (size - len(header)) // len(row))


def numbered_lines(size: int, chunk: int = MB) -> list[bytes]:
    """`email` then `userN@example.com` lines up to about `size` bytes, in chunks of
    about `chunk` bytes (sent as a generator: chunked transfer)."""
    chunks, total, n = [b"email\n"], 6, 0
    block: list[str] = []
    length = 0
    while total + length < size:
        line = f"user{n}@example.com\n"
        block.append(line)
        length += len(line)
        n += 1
        if length >= chunk:
            chunks.append("".join(block).encode())
            total += length
            block, length = [], 0
    if block:
        chunks.append("".join(block).encode())
    return chunks


@dataclass
class Kind:
    name: str
    method_path: str
    role: str  # the key it is sent with
    content_type: str
    build: Callable[[int], bytes | list[bytes]]  # size in bytes -> the body
    size: int
    note: str
    params: dict[str, str] | None = None
    streamed: bool = False  # sent as a generator of chunks (requests sends it chunked)


def kinds(max_json: int) -> list[Kind]:
    largest = max_json - JSON_SLACK
    large_json = min(LARGE, largest)
    return [
        Kind(
            "import-bad-rows",
            "/v1/imports",
            "admin",
            "text/csv",
            lambda size: lines(b"email,status\n", b"not-an-address,bogus\n", size),
            10 * MB,
            "email,status; every row not-an-address,bogus",
        ),
        Kind(
            "check-json-zeros",
            "/v1/checks",
            "sender",
            "application/json",
            lambda size: repeated(b"{" + PURPOSE + b',"addresses":[', b"0", b"]}", size),
            44 + 2 * 2_000_000 - 1,  # braces, purpose and two million zeros
            "two million 0 entries",
        ),
        Kind(
            "check-json-tiny-strings",
            "/v1/checks",
            "sender",
            "application/json",
            lambda size: repeated(b"{" + PURPOSE + b',"addresses":[', b'"a"', b"]}", size),
            largest,
            '"a" entries up to MAX_JSON_BYTES',
        ),
        Kind(
            "check-json-no-purpose",
            "/v1/checks",
            "sender",
            "application/json",
            lambda size: repeated(b'{"addresses":[', b'"x@example.com"', b"]}", size),
            large_json,
            '"x@example.com" entries, no purpose key',
        ),
        Kind(
            "json-many-values",
            "/v1/blocks",
            "sender",
            "application/json",
            lambda size: repeated(b'{"events":[', b"[]", b"]}", size),
            large_json,
            "events of empty arrays",
        ),
        Kind(
            "check-csv-large-answer",
            "/v1/checks.csv",
            "sender",
            "text/csv",
            numbered_lines,
            LARGE,
            "userN@example.com lines, only=all",
            params={"only": "all"},
            streamed=True,
        ),
    ]


# --- the floor: json.loads in this process ---------------------------------------


def json_floor(body: bytes) -> dict[str, float]:
    """Peak memory Python allocates for json.loads of `body` (tracemalloc), and the
    seconds it takes without tracing."""
    gc.collect()
    started = time.perf_counter()
    document = json.loads(body)
    seconds = time.perf_counter() - started
    del document
    gc.collect()
    tracemalloc.start()
    document = json.loads(body)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del document
    gc.collect()
    return {"peak_bytes": peak, "seconds": seconds}


# --- one run ---------------------------------------------------------------------


@dataclass
class Run:
    database: str
    kind: str
    body_bytes: int
    status: str
    seconds: float
    answer_bytes: int
    idle_pss: int
    peak_pss: int
    pss_growth: int
    worst_rss_growth: int
    worst_rss_peak: int
    server_cpu: float
    stopped: str  # why the benchmark ended the request, or ""
    answer_start: str


def server_pss(server: Server) -> int:
    assert server.process is not None
    return sum(pss(pid) for pid in [server.process.pid, *server.serving_pids()])


class Guard:
    """Ends a request that runs away: past `limit` bytes of PSS growth or `seconds`,
    SIGKILL to the server's workers and helpers (the benchmark's own children's
    children), so one kind cannot take the machine or the run's time."""

    def __init__(
        self, server: Server, memory: MemorySampler, idle: int, limit: int, seconds: float
    ):
        self.server, self.memory, self.idle = server, memory, idle
        self.limit, self.seconds = limit, seconds
        self.reason = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic() + self.seconds
        while not self._stop.wait(0.1):
            if self.memory.peak_pss_sum - self.idle > self.limit:
                self.reason = f"killed past +{self.limit // MB} MB"
            elif time.monotonic() > deadline:
                self.reason = f"killed after {self.seconds:.0f} s"
            else:
                continue
            for pid in self.server.serving_pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            return

    def __enter__(self) -> Guard:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def send(
    server: Server, kind: Kind, key: str, body: bytes | list[bytes], args: argparse.Namespace
) -> tuple[str, int, str, float, MemorySampler, str, int]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": kind.content_type}
    data: bytes | Iterator[bytes] = iter(body) if isinstance(body, list) else body
    idle = server_pss(server)
    status, answer_bytes, start = "", 0, b""
    with (
        requests.Session() as client,
        MemorySampler(server) as memory,
        Guard(server, memory, idle, args.abort_mb * MB, args.timeout) as guard,
    ):
        started = time.perf_counter()
        try:
            response = client.post(
                server.base + kind.method_path,
                params=kind.params,
                data=data,
                headers=headers,
                stream=True,
                # Not (10, …): Python's sendall counts its timeout over the whole
                # body, and the server reads a check list only as fast as it checks it.
                timeout=args.timeout + 30,
            )
            status = str(response.status_code)
            for block in response.iter_content(chunk_size=256 * 1024):
                if len(start) < 200:
                    start += block[: 200 - len(start)]
                answer_bytes += len(block)
        except requests.RequestException as exc:
            status, start = "none", f"{type(exc).__name__}: {exc}".encode()
        seconds = time.perf_counter() - started
    return status, answer_bytes, guard.reason, seconds, memory, start.decode(errors="replace"), idle


def run_kind(
    kind: Kind,
    body: bytes | list[bytes],
    env: dict[str, str],
    database: str,
    work: Path,
    args: argparse.Namespace,
) -> Run:
    body_bytes = len(body) if isinstance(body, bytes) else sum(map(len, body))
    small = kind.build(1024)
    log = work / f"server-{database}-{kind.name}.log"
    with Server(env, args.workers, log) as server:
        key = server.create_key(kind.role, f"hostile-{kind.name}")
        # A few small requests of the same kind first: the workers' first-request
        # set-up (database engine, vault, helpers) is not counted as growth.
        headers = {"Authorization": f"Bearer {key}", "Content-Type": kind.content_type}
        for _ in range(2 * args.workers):
            warm = b"".join(small) if isinstance(small, list) else small
            requests.post(
                server.base + kind.method_path,
                params=kind.params,
                data=warm,
                headers=headers,
                timeout=60,
            )
        idle_rss = {pid: rss(pid) for pid in server.serving_pids()}
        status, answer_bytes, stopped, seconds, memory, start, idle = send(
            server, kind, key, body, args
        )
    growth = {pid: peak - idle_rss.get(pid, 0) for pid, peak in memory.peak_by_pid.items()}
    worst = max(growth, key=lambda pid: growth[pid], default=None)
    return Run(
        database=database,
        kind=kind.name,
        body_bytes=body_bytes,
        status=status,
        seconds=seconds,
        answer_bytes=answer_bytes,
        idle_pss=idle,
        peak_pss=memory.peak_pss_sum,
        pss_growth=memory.peak_pss_sum - idle,
        worst_rss_growth=growth[worst] if worst is not None else 0,
        worst_rss_peak=memory.peak_by_pid[worst] if worst is not None else 0,
        server_cpu=memory.cpu_used,
        stopped=stopped,
        answer_start=start,
    )


# --- reporting -------------------------------------------------------------------


def size_text(size: int) -> str:
    return f"{size / MB:.1f} MB" if size >= MB // 10 else f"{size:,} B"


def verdict(run: Run) -> str:
    return "PASS" if run.pss_growth <= GROWTH_TARGET and not run.stopped else "FAIL"


def floor_ratio(run: Run, floors: dict[str, dict[str, float]]) -> str:
    """The server's PSS growth over what json.loads of the same body allocates."""
    floor = floors.get(run.kind)
    if not floor or not floor["peak_bytes"]:
        return "-"
    return f"{run.pss_growth / floor['peak_bytes']:.2f}"


def print_table(runs: list[Run], floors: dict[str, dict[str, float]]) -> None:
    header = (
        f"{'database':<11}{'kind':<25}{'body MB':>8}  {'status':<8}{'seconds':>8}"
        f"{'CPU s':>7}{'answer':>11}{'idle MB':>8}{'PSS +MB':>9}{'1 proc +MB':>11}"
        f"{'x floor':>8}  target"
    )
    print()
    print(header)
    print("-" * len(header))
    for run in runs:
        print(
            f"{run.database:<11}{run.kind:<25}{run.body_bytes / MB:>8.1f}  {run.status:<8}"
            f"{run.seconds:>8.1f}{run.server_cpu:>7.1f}{size_text(run.answer_bytes):>11}"
            f"{run.idle_pss / MB:>8.0f}{run.pss_growth / MB:>9.0f}"
            f"{run.worst_rss_growth / MB:>11.0f}{floor_ratio(run, floors):>8}  {verdict(run)}"
            + (f" ({run.stopped})" if run.stopped else "")
        )
    print()
    print(f"target: peak PSS growth of the whole server <= +{GROWTH_TARGET // MB} MB")
    for name, floor in floors.items():
        print(
            f"floor, json.loads of the {name} body in one Python process: "
            f"peak {floor['peak_bytes'] / MB:.0f} MB allocated (tracemalloc), "
            f"{floor['seconds']:.1f} s"
        )
    for run in runs:
        if not run.status.startswith("2") and run.answer_start:
            print(f"{run.database} {run.kind}: {run.answer_start[:160]}")


# --- main ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.hostile_memory", description=__doc__
    )
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument(
        "--kinds", default="all", help="comma-separated kinds to run (default: all)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--timeout", type=float, default=90, help="seconds before a request's workers are killed"
    )
    parser.add_argument(
        "--abort-mb",
        type=int,
        default=6000,
        help="PSS growth (MB) at which a request's workers are killed",
    )
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to while (re)creating the benchmark's own",
    )
    parser.add_argument("--pg-database", default="bench_hostile")
    parser.add_argument("--label", default="", help="a tag for the results file name")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder and the PostgreSQL database"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    max_json = int(os.environ.get("MAX_JSON_BYTES") or DEFAULT_MAX_JSON_BYTES)
    selected = kinds(max_json)
    if args.kinds != "all":
        wanted = args.kinds.split(",")
        unknown = set(wanted) - {k.name for k in selected}
        if unknown:
            raise SystemExit(f"unknown kinds: {', '.join(sorted(unknown))}")
        selected = [k for k in selected if k.name in wanted]
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    instance = work / "instance"
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update(
        SUPPRESSION_ENV="development",
        SUPPRESSION_INSTANCE=str(instance),
        MAX_JSON_BYTES=str(max_json),
    )
    Settings.from_env(env)  # generates the instance's keys.json
    load_before = os.getloadavg()
    print(
        f"work folder {work}; databases {', '.join(databases)}; MAX_JSON_BYTES {max_json:,}; "
        f"load average {load_before[0]:.1f}"
    )

    bodies = {kind.name: kind.build(kind.size) for kind in selected}
    floors: dict[str, dict[str, float]] = {}
    for name in ("check-json-zeros", "check-json-tiny-strings"):
        body = bodies.get(name)
        if isinstance(body, bytes):
            floors[name] = json_floor(body)
            print(
                f"floor {name}: json.loads of {len(body) / MB:.1f} MB peaks at "
                f"{floors[name]['peak_bytes'] / MB:.0f} MB, {floors[name]['seconds']:.1f} s"
            )

    runs: list[Run] = []
    admin_url = args.pg_admin_url
    pg_dsn = admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
    started_all = time.perf_counter()
    try:
        for database in databases:
            if database == "sqlite":
                url = f"sqlite:///{instance / 'hostile.db'}"
            else:
                recreate_postgresql(admin_url, args.pg_database)
                url = normalise_database_url(pg_dsn)
            server_env = {**env, "DATABASE_URL": url}
            for kind in selected:
                # A fresh server per kind: each peak starts from fresh workers.
                run = run_kind(kind, bodies[kind.name], server_env, database, work, args)
                runs.append(run)
                print(
                    f"{database} {kind.name}: {run.body_bytes / MB:.1f} MB -> {run.status} in "
                    f"{run.seconds:.1f} s, PSS +{run.pss_growth / MB:.0f} MB, one process "
                    f"+{run.worst_rss_growth / MB:.0f} MB {verdict(run)}"
                    + (f" ({run.stopped})" if run.stopped else "")
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if "postgresql" in databases:
                drop_postgresql(admin_url, args.pg_database)

    print_table(runs, floors)
    load_after = os.getloadavg()
    print(
        f"{len(runs)} requests in {time.perf_counter() - started_all:.0f} s; load average "
        f"(1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    passed = sum(verdict(run) == "PASS" for run in runs)
    print(f"target: {passed} of {len(runs)} PASS")

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"-{args.label}" if args.label else ""
    result_path = RESULTS / f"hostile-memory-{stamp}{tag}.json"
    document = {
        "at": stamp,
        "label": args.label,
        "workers": args.workers,
        "max_json_bytes": max_json,
        "git": git_state(),
        "python": sys.version.split()[0],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "target_pss_growth_bytes": GROWTH_TARGET,
        "kinds": {kind.name: kind.note for kind in selected},
        "floors": floors,
        "runs": [{**asdict(run), "target": verdict(run)} for run in runs],
    }
    result_path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"figures written to {result_path.relative_to(ROOT)}")
    if args.keep:
        print(
            f"kept: {work}"
            + (f" and database {args.pg_database}" if "postgresql" in databases else "")
        )
    return 0 if passed == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
