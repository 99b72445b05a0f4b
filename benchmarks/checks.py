"""Benchmark of the pre-send checks over HTTP, against a pure-Python floor.

    .venv/bin/python -m benchmarks.checks [--size N] [--db sqlite|postgresql|both]
                                          [--path json|csv|page|both]

Builds a store of N subjects, serves it with gunicorn (2 workers) on loopback,
checks N addresses with POST /v1/checks and POST /v1/checks.csv (and, with
--path page, the staff page Check a list: upload, then the full download), verifies every
answer against the answer the data set was built to get, and prints seconds,
the ratios to two floors measured in the same run and PASS/MISS per target: the
minimal floor (plain Python and its standard library: json.loads, strip().lower(),
keyed BLAKE2b, set lookup, json.dumps of the answer), on which the targets are
judged, and the service floor (the service's own canonicalise + keyed index + set
lookup). See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from benchmarks.dataset import PURPOSE, SHAPES, CheckList, build_check_list, build_store
from benchmarks.server import MemorySampler, Server
from benchmarks.store import (
    Rows,
    build_postgresql,
    build_sqlite,
    drop_postgresql,
    postgresql_settings,
    recreate_postgresql,
    seal_store,
)
from suppression.config.environment import normalise_database_url
from suppression.config.settings import Settings
from suppression.domain.addresses import canonicalise, keyed_index
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
JSON_TARGET = 2.0  # times the floor
CSV_TARGET = 2.5  # times the floor
# Peak PSS of the whole server (gunicorn's master, its workers and their check
# helpers), summed: each physical page counted once. RSS summed over the same
# processes counts every shared library page once per process; it is printed too.
CSV_MEMORY_TARGET = 300 * 1024 * 1024
MB = 1024 * 1024
KEY_ENV = ("ADDRESS_INDEX_KEY", "ADDRESS_SEALING_KEYS", "SECRET_KEY", "DATABASE_URL")


@dataclass
class Run:
    database: str
    path: str
    seconds: float
    first_byte: float
    upload: float | None
    peak_rss_sum: int
    peak_pss_sum: int
    peak_rss_worker: int
    baseline_rss_sum: int
    server_cpu: float
    verified: bool
    mismatches: int
    examples: list[Any] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    ratio: float = 0.0  # to the minimal floor: the targets
    cpu_ratio: float = 0.0
    service_ratio: float = 0.0  # to the service floor


# --- the floor -------------------------------------------------------------------


def floor_seconds(
    emails: list[str], key: bytes, stored: set[bytes], repeat: int
) -> tuple[float, float]:
    """canonicalise + keyed index + set lookup of every address, one process, best of
    n: (wall seconds, CPU seconds)."""
    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        hits = 0
        for raw in emails:
            canonical = canonicalise(raw)
            if canonical is not None and keyed_index(key, canonical) in stored:
                hits += 1
        best = min(best, (time.perf_counter() - started, time.process_time() - cpu))
    return best


def minimal_floor_seconds(
    body: bytes, key: bytes, suppressed: dict[bytes, str], repeat: int
) -> tuple[float, float]:
    """What no implementation in one Python process beats: parse the request body,
    trim and lower-case, keyed BLAKE2b, one dict lookup (the reason of each
    suppressed address), and the JSON answer; best of n: (wall, CPU seconds)."""
    best = (float("inf"), float("inf"))
    blake2b = hashlib.blake2b
    for _ in range(repeat):
        started, cpu = time.perf_counter(), time.process_time()
        document = json.loads(body)
        answer = []
        total = 0
        for entry in document["addresses"]:
            total += 1
            email = entry if isinstance(entry, str) else entry["email"]
            digest = blake2b(email.strip().lower().encode(), key=key, digest_size=16).digest()
            reason = suppressed.get(digest)
            if reason is not None:
                answer.append({"email": email, "reason": reason})
        out = json.dumps(
            {
                "purpose": document["purpose"],
                "total": total,
                "sendable": total - len(answer),
                "suppressed": answer,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        assert out
        best = min(best, (time.perf_counter() - started, time.process_time() - cpu))
    return best


def minimal_store(checks: CheckList, key: bytes) -> dict[bytes, str]:
    """The minimal floor's store: the BLAKE2b of each address the list must get back
    as suppressed, with its reason (invalid ones included, as a plain store would)."""
    return {
        hashlib.blake2b(email.strip().lower().encode(), key=key, digest_size=16).digest(): reason
        for email, reason in zip(checks.emails, checks.expected, strict=True)
        if reason is not None
    }


# --- request bodies --------------------------------------------------------------


def json_body(checks: CheckList) -> bytes:
    addresses = [
        email if hint is None else {"email": email, "country": hint}
        for email, hint in zip(checks.emails, checks.hints, strict=True)
    ]
    document = {"purpose": PURPOSE, "addresses": addresses}
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def csv_chunks(checks: CheckList, chunk_rows: int = 20_000) -> list[bytes]:
    chunks = []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["email", "country"])
    for n, (email, hint) in enumerate(zip(checks.emails, checks.hints, strict=True), start=1):
        writer.writerow([email, hint or ""])
        if n % chunk_rows == 0:
            chunks.append(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        chunks.append(buffer.getvalue().encode("utf-8"))
    return chunks


# --- verification ----------------------------------------------------------------


def _compare(got: list[Any], want: list[Any]) -> tuple[int, list[Any]]:
    mismatches = abs(len(got) - len(want))
    examples = []
    for position, (g, w) in enumerate(zip(got, want, strict=False)):
        if g != w:
            mismatches += 1
            if len(examples) < 5:
                examples.append({"position": position, "got": g, "expected": w})
    return mismatches, examples


def verify_json(content: bytes, checks: CheckList) -> tuple[int, list[Any], dict[str, int]]:
    body = json.loads(content)
    want = [
        (email, reason)
        for email, reason in zip(checks.emails, checks.expected, strict=True)
        if reason is not None
    ]
    got = [(entry["email"], entry["reason"]) for entry in body["suppressed"]]
    mismatches, examples = _compare(got, want)
    totals = {
        "total": len(checks.emails),
        "sendable": len(checks.emails) - len(want),
        "invalid": sum(1 for _, reason in want if reason == "invalid"),
        "purpose": PURPOSE,
    }
    for name, value in totals.items():
        if body.get(name) != value:
            mismatches += 1
            examples.insert(0, {"field": name, "got": body.get(name), "expected": value})
    reasons = Counter(reason for _, reason in got)
    reasons["sendable"] = body.get("sendable", 0)
    return mismatches, examples[:5], dict(reasons)


def verify_csv(content: bytes, checks: CheckList) -> tuple[int, list[Any], dict[str, int]]:
    rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
    want = [
        ["email", "sendable", "reason"],
        *(
            [email, "true", ""] if reason is None else [email, "false", reason]
            for email, reason in zip(checks.emails, checks.expected, strict=True)
        ),
    ]
    mismatches, examples = _compare(rows, want)
    reasons = Counter(row[2] or "sendable" for row in rows[1:] if len(row) == 3)
    return mismatches, examples, dict(reasons)


# --- the HTTP runs ---------------------------------------------------------------


def run_json(server: Server, key: str, body: bytes, checks: CheckList, database: str) -> Run:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with requests.Session() as client, MemorySampler(server) as memory:
        started = time.perf_counter()
        response = client.post(
            server.base + "/v1/checks", data=body, headers=headers, stream=True, timeout=900
        )
        first_byte = time.perf_counter() - started
        content = response.content
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/checks answered {response.status_code}: {content[:500]!r}")
    mismatches, examples, reasons = verify_json(content, checks)
    return Run(
        database=database,
        path="json",
        seconds=seconds,
        first_byte=first_byte,
        upload=None,
        peak_rss_sum=memory.peak_sum,
        peak_pss_sum=memory.peak_pss_sum,
        peak_rss_worker=memory.peak_worker,
        baseline_rss_sum=memory.baseline_sum,
        server_cpu=memory.cpu_used,
        verified=mismatches == 0,
        mismatches=mismatches,
        examples=examples,
        reasons=reasons,
    )


def run_csv(server: Server, key: str, chunks: list[bytes], checks: CheckList, database: str) -> Run:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/csv; charset=utf-8"}
    uploaded: list[float] = []

    def body(started: float) -> Iterator[bytes]:
        yield from chunks  # a generator: requests streams it, chunked
        uploaded.append(time.perf_counter() - started)

    with requests.Session() as client, MemorySampler(server) as memory:
        started = time.perf_counter()
        response = client.post(
            server.base + "/v1/checks.csv",
            params={"purpose": PURPOSE},
            data=body(started),
            headers=headers,
            stream=True,
            timeout=900,
        )
        first_byte = time.perf_counter() - started
        content = b"".join(response.iter_content(chunk_size=256 * 1024))
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(
            f"POST /v1/checks.csv answered {response.status_code}: {content[:500]!r}"
        )
    mismatches, examples, reasons = verify_csv(content, checks)
    return Run(
        database=database,
        path="csv",
        seconds=seconds,
        first_byte=first_byte,
        upload=uploaded[0] if uploaded else None,
        peak_rss_sum=memory.peak_sum,
        peak_pss_sum=memory.peak_pss_sum,
        peak_rss_worker=memory.peak_worker,
        baseline_rss_sum=memory.baseline_sum,
        server_cpu=memory.cpu_used,
        verified=mismatches == 0,
        mismatches=mismatches,
        examples=examples,
        reasons=reasons,
    )


STAFF_PASSWORD = "benchmark staff passphrase"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
BOUNDARY = "benchmark-list-check-boundary"


def page_body(chunks: list[bytes], folder: Path, token: str) -> Path:
    """The page's multipart form as a file, so that requests streams it with its length."""
    path = folder / "page-upload.multipart"
    with path.open("wb") as file:
        for name, value in (("csrf_token", token), ("purpose", PURPOSE)):
            file.write(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                f"{value}\r\n".encode()
            )
        file.write(
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="list"; '
            'filename="list.csv"\r\nContent-Type: text/csv\r\n\r\n'.encode()
        )
        for chunk in chunks:
            file.write(chunk)
        file.write(f"\r\n--{BOUNDARY}--\r\n".encode())
    return path


def run_page(
    server: Server, chunks: list[bytes], checks: CheckList, database: str, folder: Path
) -> Run:
    """Sign in as staff, upload the list on Check a list, download the full result."""
    server.create_staff("bench", STAFF_PASSWORD)
    with requests.Session() as client:
        sign_in = client.get(server.base + "/admin/sign-in", timeout=60).text
        client.post(
            server.base + "/admin/sign-in",
            data={
                "username": "bench",
                "password": STAFF_PASSWORD,
                "csrf_token": CSRF.search(sign_in).group(1),  # type: ignore[union-attr]
            },
            timeout=60,
        )
        form = client.get(server.base + "/admin/checks", timeout=60).text
        body = page_body(chunks, folder, CSRF.search(form).group(1))  # type: ignore[union-attr]
        headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
        with body.open("rb") as upload, MemorySampler(server) as memory:
            started = time.perf_counter()
            response = client.post(
                server.base + "/admin/checks", data=upload, headers=headers, timeout=900
            )
            first_byte = time.perf_counter() - started  # the answer page, after the check
            full = client.get(server.base + "/admin/checks/result/full.csv", timeout=900)
            seconds = time.perf_counter() - started
        body.unlink()
    if not response.url.endswith("/admin/checks/result") or full.status_code != 200:
        raise RuntimeError(f"the page answered {response.status_code}: {response.text[:500]!r}")
    # The page's download is for spreadsheets: BOM, CRLF, formula cells quoted.
    text = full.content.decode("utf-8-sig")
    plain = io.StringIO()
    writer = csv.writer(plain, lineterminator="\n")
    for row in csv.reader(io.StringIO(text, newline="")):
        writer.writerow([_unquoted(cell) for cell in row])
    mismatches, examples, reasons = verify_csv(plain.getvalue().encode("utf-8"), checks)
    return Run(
        database=database,
        path="page",
        seconds=seconds,
        first_byte=first_byte,
        upload=None,
        peak_rss_sum=memory.peak_sum,
        peak_pss_sum=memory.peak_pss_sum,
        peak_rss_worker=memory.peak_worker,
        baseline_rss_sum=memory.baseline_sum,
        server_cpu=memory.cpu_used,
        verified=mismatches == 0,
        mismatches=mismatches,
        examples=examples,
        reasons=reasons,
    )


def _unquoted(cell: str) -> str:
    return (
        cell[1:] if cell.startswith("'") and cell[1:2] in ("=", "+", "-", "@", "\t", "\r") else cell
    )


# --- reporting -------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def targets(run: Run) -> list[tuple[str, bool]]:
    if run.path == "json":
        return [(f"time <= {JSON_TARGET:g}x floor", run.ratio <= JSON_TARGET)]
    if run.path == "page":  # a person waits on it: the memory target is the checks'
        return [(f"memory <= {CSV_MEMORY_TARGET // MB} MB", run.peak_pss_sum <= CSV_MEMORY_TARGET)]
    return [
        (f"time <= {CSV_TARGET:g}x floor", run.ratio <= CSV_TARGET),
        (f"memory <= {CSV_MEMORY_TARGET // MB} MB", run.peak_pss_sum <= CSV_MEMORY_TARGET),
    ]


def print_table(
    size: int,
    floors: dict[str, tuple[float, float]],
    builds: dict[str, Any],
    runs: list[Run],
) -> None:
    print()
    minimal, service = floors["minimal"], floors["service"]
    print(f"Checks of {size:,} addresses; floors, one process, best of n:")
    print(
        f"  minimal {minimal[0]:.2f} s, CPU {minimal[1]:.2f} s ({minimal[0] / size * 1e6:.2f} µs "
        "an address: json.loads, strip().lower(), keyed BLAKE2b, lookup, json.dumps; the targets)"
    )
    print(
        f"  service {service[0]:.2f} s, CPU {service[1]:.2f} s ({service[0] / size * 1e6:.2f} µs "
        "an address: canonicalise + keyed index + set lookup)"
    )
    for name, build in builds.items():
        print(f"  store on {name}: built in {build['seconds']:.1f} s, rows {build['rows']}")
        if "server" in build:
            print(f"    PostgreSQL server: {build['server']}")
    header = (
        f"{'database':<11}{'path':<6}{'seconds':>8}{'x min':>8}{'x svc':>8}{'1st byte':>10}"
        f"{'server CPU':>12}{'x min':>8}{'PSS MB':>8}{'RSS MB':>8}{'serving':>9}  "
        f"{'answers':<10}targets"
    )
    print()
    print(header)
    print("-" * (len(header) + 40))
    for run in runs:
        answers = "exact" if run.verified else f"{run.mismatches} WRONG"
        marks = ", ".join(f"{name} {verdict(ok)}" for name, ok in targets(run))
        print(
            f"{run.database:<11}{run.path:<6}{run.seconds:>8.2f}{run.ratio:>7.2f}x"
            f"{run.service_ratio:>7.2f}x"
            f"{run.first_byte:>10.2f}{run.server_cpu:>12.2f}{run.cpu_ratio:>7.2f}x"
            f"{run.peak_pss_sum / MB:>8.0f}{run.peak_rss_sum / MB:>8.0f}"
            f"{run.peak_rss_worker / MB:>9.0f}"
            f"  {answers:<10}{marks}"
        )
    print()
    for run in runs:
        if not run.verified:
            print(f"{run.database} {run.path}: {run.mismatches} answers differ, e.g.:")
            for example in run.examples:
                print(f"    {example}")


def reason_table(expected: dict[str, int], runs: list[Run]) -> None:
    names = sorted(expected, key=lambda r: -expected[r])
    print(
        f"{'answer':<22}{'expected':>10}"
        + "".join(f"{r.database[:6] + ' ' + r.path:>13}" for r in runs)
    )
    for name in names:
        got = "".join(f"{r.reasons.get(name, 0):>13,}" for r in runs)
        print(f"{name:<22}{expected[name]:>10,}{got}")


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD"),
        "changed": git("status", "--porcelain", "--", "suppression").splitlines(),
    }


# --- main ------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.checks", description=__doc__)
    parser.add_argument("--size", type=int, default=1_000_000, help="subjects and addresses")
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--path", choices=("json", "csv", "page", "both"), default="both")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument(
        "--list",
        choices=SHAPES,
        default="mixed",
        help="mixed: the data set of README; one-domain: one domain, 10%% suppressed",
    )
    parser.add_argument("--floor-repeat", type=int, default=3, help="best of n floor runs")
    parser.add_argument(
        "--chunk-size",
        type=int,
        help="CHECK_CHUNK_SIZE for the server (default: the service's own default)",
    )
    parser.add_argument(
        "--pg-admin-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a database to connect to while (re)creating the benchmark's own",
    )
    parser.add_argument("--pg-database", default="bench_checks")
    parser.add_argument("--label", default="", help="a tag for the results file name")
    parser.add_argument(
        "--keep", action="store_true", help="keep the work folder and the PostgreSQL database"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.size
    databases = ["sqlite", "postgresql"] if args.db == "both" else [args.db]
    paths = ["json", "csv"] if args.path == "both" else [args.path]
    work = Path(tempfile.mkdtemp(prefix="bench-checks-"))
    instance = work / "instance"
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update(SUPPRESSION_ENV="development", SUPPRESSION_INSTANCE=str(instance))
    if args.chunk_size:
        env["CHECK_CHUNK_SIZE"] = str(args.chunk_size)
    settings = Settings.from_env(env)  # generates the instance's keys.json
    keys = settings.keys
    vault = AddressVault(keys.index_key, AddressSealer(keys.sealing_keys, keys.sealing_key_current))
    load_before = os.getloadavg()
    print(
        f"work folder {work}; size {size:,}; databases {', '.join(databases)}; "
        f"chunk size {settings.check_chunk_size:,}; list {args.list}; "
        f"load average {load_before[0]:.1f}"
    )

    started = time.perf_counter()
    store = build_store(size, args.seed, args.list)
    checks = build_check_list(store, size, args.seed, args.list)
    indexes, sealed = seal_store(store, vault)
    rows = Rows(store, indexes, sealed)
    prepared = time.perf_counter() - started
    print(f"data set generated, indexed and sealed in {prepared:.1f} s: {checks.composition}")

    service_floor = floor_seconds(checks.emails, keys.index_key, set(indexes), args.floor_repeat)
    bodies: dict[str, Any] = {"json": json_body(checks)}
    blake_key = os.urandom(32)
    floor, floor_cpu = minimal_floor_seconds(
        bodies["json"], blake_key, minimal_store(checks, blake_key), args.floor_repeat
    )
    floors = {"minimal": (floor, floor_cpu), "service": service_floor}
    for name, (wall, cpu) in floors.items():
        print(
            f"{name} floor: {wall:.2f} s ({wall / size * 1e6:.2f} µs per address), CPU {cpu:.2f} s"
        )
    if "csv" in paths or "page" in paths:
        bodies["csv"] = csv_chunks(checks)

    builds: dict[str, Any] = {}
    runs: list[Run] = []
    admin_url = args.pg_admin_url
    pg_dsn = admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
    try:
        for name in databases:
            if name == "sqlite":
                path = instance / "bench.db"
                url = f"sqlite:///{path}"
                started = time.perf_counter()
                counts = build_sqlite(url, str(path), rows)
            else:
                url = normalise_database_url(pg_dsn)
                started = time.perf_counter()
                recreate_postgresql(admin_url, args.pg_database)
                counts = build_postgresql(url, pg_dsn, rows)
            builds[name] = {"seconds": time.perf_counter() - started, "rows": counts}
            if name == "postgresql":
                builds[name]["server"] = postgresql_settings(admin_url)
            print(f"{name}: store built in {builds[name]['seconds']:.1f} s: {counts}")
            server_env = {**env, "DATABASE_URL": url}
            for path_name in paths:
                # A fresh server per path: each peak starts from fresh workers.
                log = work / f"server-{name}-{path_name}.log"
                with Server(server_env, args.workers, log) as server:
                    key = server.create_key("sender", f"benchmark-{path_name}")
                    if path_name == "json":
                        run = run_json(server, key, bodies["json"], checks, name)
                    elif path_name == "page":
                        run = run_page(server, bodies["csv"], checks, name, work)
                    else:
                        run = run_csv(server, key, bodies["csv"], checks, name)
                run.ratio = run.seconds / floor
                run.cpu_ratio = run.server_cpu / floor_cpu
                run.service_ratio = run.seconds / service_floor[0]
                runs.append(run)
                print(
                    f"{name} {path_name}: {run.seconds:.2f} s ({run.ratio:.2f}x minimal floor, "
                    f"{run.service_ratio:.2f}x service floor), "
                    f"first byte {run.first_byte:.2f} s, peak worker RSS "
                    f"{run.peak_rss_sum / MB:.0f} MB summed (PSS of the whole server "
                    f"{run.peak_pss_sum / MB:.0f} MB), answers "
                    f"{'exact' if run.verified else f'{run.mismatches} wrong'}"
                )
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
            if "postgresql" in databases:
                drop_postgresql(admin_url, args.pg_database)

    expected = Counter(reason or "sendable" for reason in checks.expected)
    print()
    reason_table(dict(expected), runs)
    print_table(size, floors, builds, runs)
    load_after = os.getloadavg()
    print(f"load average (1 min) {load_before[0]:.1f} before, {load_after[0]:.1f} after")
    all_targets = [ok for run in runs for _, ok in targets(run)]
    print(
        f"targets: {sum(all_targets)} of {len(all_targets)} PASS; answers "
        f"{'all exact' if all(r.verified for r in runs) else 'WRONG'}"
    )

    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"-{args.label}" if args.label else ""
    result_path = RESULTS / f"checks-{stamp}-{size}{tag}.json"
    document = {
        "at": stamp,
        "label": args.label,
        "size": size,
        "seed": args.seed,
        "workers": args.workers,
        "git": git_state(),
        "python": sys.version.split()[0],
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_before": load_before,
            "load_average_after": load_after,
        },
        "check_chunk_size": settings.check_chunk_size,
        "composition": checks.composition,
        "store_kinds": store.counts,
        "expected_answers": dict(expected),
        "list": args.list,
        "floor_seconds": floor,
        "floor_cpu_seconds": floor_cpu,
        "floors": floors,
        "store_builds": builds,
        "targets": {
            "json_ratio": JSON_TARGET,
            "csv_ratio": CSV_TARGET,
            "csv_peak_pss_sum_bytes": CSV_MEMORY_TARGET,
        },
        "runs": [
            {**asdict(run), "targets": {name: verdict(ok) for name, ok in targets(run)}}
            for run in runs
        ],
    }
    result_path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"figures written to {result_path.relative_to(ROOT)}")
    if args.keep:
        print(
            f"kept: {work}"
            + (f" and database {args.pg_database}" if "postgresql" in databases else "")
        )
    return 0 if all(r.verified for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
