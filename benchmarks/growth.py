"""How the cost of a JSON check grows with the store and with the list (PostgreSQL).

    .venv/bin/python -m benchmarks.growth [--stores 100000,1000000,10000000]
                                          [--lists 10000,100000,1000000]

For each store size (ascending): a fresh PostgreSQL database filled with that
many subjects (dataset.py's mixed store, binary COPY as store.py does), its size
on disk per subject (pg_total_relation_size summed over the tables), a freshly
started `suppression serve --workers 2`, two untimed warm-up checks at once (each
worker starts its helper processes on its first large list), then POST /v1/checks
per list size no larger than the store (dataset.py's mixed list), each answer
verified; a list under 500,000 addresses is checked up to --repeat times (5) and
the median taken. Per list it prints the microseconds an address, the peak PSS
of the whole server, and its growth over the idle server per address; then the
two curves (per-address cost across stores at the largest common list, and
across lists at the largest store) with the ratio of their largest to their
smallest point: target within 1.3x.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import requests

from benchmarks.checks import KEY_ENV, RESULTS, ROOT, git_state, json_body, verify_json
from benchmarks.dataset import build_check_list, build_store
from benchmarks.server import MemorySampler, Server, pss
from benchmarks.store import (
    Rows,
    build_postgresql,
    drop_postgresql,
    postgresql_settings,
    recreate_postgresql,
    seal_store,
)
from suppression.config.environment import normalise_database_url
from suppression.config.settings import Settings
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault

GROWTH_TARGET = 1.3  # largest over smallest per-address cost along a curve
MB = 1024 * 1024
TABLES = ("subjects", "consent_states", "blocks", "decision_inputs")


@dataclass
class Point:
    store: int
    addresses: int
    seconds: float
    micros_per_address: float
    idle_pss: int
    peak_pss: int
    bytes_per_address: float
    exact: bool
    load: float
    runs: int = 1  # the seconds are the median of this many checks


def repeats(list_size: int, args: argparse.Namespace) -> int:
    """Enough checks of a list for 500,000 addresses in all, at most --repeat."""
    return max(1, min(args.repeat, -(-500_000 // list_size)))


def sizes(text: str) -> list[int]:
    return sorted(int(part.replace("_", "")) for part in text.split(",") if part)


def disk_bytes(dsn: str) -> int:
    """The store's tables with their indexes and TOAST, as PostgreSQL sums them."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT " + " + ".join(f"pg_total_relation_size('{t}')" for t in TABLES)
        ).fetchone()
        return int(row[0]) if row else 0


def prewarm(dsn: str) -> None:
    """The check's read, table and index, in PostgreSQL's buffers (as far as
    shared_buffers holds them)."""
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("CREATE EXTENSION IF NOT EXISTS pg_prewarm")
        connection.execute("SELECT pg_prewarm('pk_decision_inputs'), pg_prewarm('decision_inputs')")


def idle_pss(server: Server) -> int:
    assert server.process is not None
    return sum(pss(pid) for pid in [server.process.pid, *server.serving_pids()])


def check(server: Server, key: str, body: bytes) -> tuple[float, bytes, MemorySampler]:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with requests.Session() as client, MemorySampler(server) as memory:
        started = time.perf_counter()
        response = client.post(server.base + "/v1/checks", data=body, headers=headers, timeout=1800)
        seconds = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"POST /v1/checks answered {response.status_code}")
    return seconds, response.content, memory


def ratio(values: list[float]) -> float:
    return max(values) / min(values) if values else 0.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.growth", description=__doc__)
    parser.add_argument("--stores", default="100000,1000000,10000000")
    parser.add_argument("--lists", default="10000,100000,1000000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="bench_growth")
    parser.add_argument("--label", default="")
    parser.add_argument(
        "--repeat", type=int, default=5, help="checks of a short list, their median is printed"
    )
    parser.add_argument(
        "--prewarm",
        action="store_true",
        help="read decision_inputs and its primary key into shared_buffers (pg_prewarm) "
        "before the checks, as a server that has served checks for a while holds them",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stores, lists = sizes(args.stores), sizes(args.lists)
    work = Path(tempfile.mkdtemp(prefix="bench-growth-"))
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update(SUPPRESSION_ENV="development", SUPPRESSION_INSTANCE=str(work / "instance"))
    keys = Settings.from_env(env).keys  # generates the instance's keys.json
    vault = AddressVault(keys.index_key, AddressSealer(keys.sealing_keys, keys.sealing_key_current))
    admin_url = args.pg_admin_url
    dsn = admin_url.rsplit("/", 1)[0] + "/" + args.pg_database
    env["DATABASE_URL"] = normalise_database_url(dsn)
    print(
        f"stores {stores}; lists {lists}; {os.cpu_count()} CPUs; load {os.getloadavg()[0]:.1f}; "
        f"PostgreSQL {postgresql_settings(admin_url)}; prewarm {args.prewarm}"
    )
    points: list[Point] = []
    builds: dict[int, dict[str, float]] = {}
    try:
        for store_size in stores:
            started = time.perf_counter()
            store = build_store(store_size, args.seed)
            indexes, sealed = seal_store(store, vault)
            generated = time.perf_counter() - started
            recreate_postgresql(admin_url, args.pg_database)
            build_postgresql(env["DATABASE_URL"], dsn, Rows(store, indexes, sealed))
            loaded = time.perf_counter() - started - generated
            del indexes, sealed
            on_disk = disk_bytes(dsn)
            if args.prewarm:
                prewarm(dsn)
            builds[store_size] = {
                "generate_seconds": generated,
                "load_seconds": loaded,
                "disk_bytes": on_disk,
                "disk_bytes_per_subject": on_disk / store_size,
            }
            print(
                f"store {store_size:,}: generated and sealed in {generated:.0f} s, loaded "
                f"(COPY, VACUUM ANALYZE) in {loaded:.0f} s; {on_disk / MB:,.0f} MB on disk, "
                f"{on_disk / store_size:.0f} bytes a subject; load {os.getloadavg()[0]:.1f}"
            )
            with Server(env, args.workers, work / f"server-{store_size}.log") as server:
                key = server.create_key("sender", f"growth-{store_size}")
                # Each worker starts its own helpers on its first large list: pairs
                # of checks at once until both have (the serving processes stop
                # growing), so that no measured check pays for a helper's start.
                warm = json_body(build_check_list(store, min(lists[0], store_size), args.seed + 7))
                counts = [len(server.serving_pids())]
                while len(counts) < 3 or (counts[-1] != counts[-3] and len(counts) < 8):
                    with ThreadPoolExecutor(2) as both:
                        list(both.map(check, [server] * 2, [key] * 2, [warm] * 2))
                    counts.append(len(server.serving_pids()))
                print(f"  serving processes after warming up: {counts[-1]}")
                for list_size in (n for n in lists if n <= store_size):
                    checks = build_check_list(store, list_size, args.seed)
                    body = json_body(checks)
                    idle = idle_pss(server)
                    # A short list's one run is a fraction of a second that the other
                    # work on a shared machine can double: its median of several.
                    runs = [check(server, key, body) for _ in range(repeats(list_size, args))]
                    seconds = statistics.median(run[0] for run in runs)
                    mismatches = sum(verify_json(run[1], checks)[0] for run in runs)
                    peak = max(run[2].peak_pss_sum for run in runs)
                    point = Point(
                        store=store_size,
                        addresses=list_size,
                        seconds=seconds,
                        micros_per_address=seconds / list_size * 1e6,
                        idle_pss=idle,
                        peak_pss=peak,
                        bytes_per_address=max(0, peak - idle) / list_size,
                        runs=len(runs),
                        exact=mismatches == 0,
                        load=os.getloadavg()[0],
                    )
                    points.append(point)
                    print(
                        f"  list {list_size:>9,}: {seconds:7.2f} s (median of {len(runs)}), "
                        f"{point.micros_per_address:5.2f} µs an address, peak PSS "
                        f"{point.peak_pss / MB:5.0f} MB (+{point.bytes_per_address:.0f} bytes an "
                        f"address), answers {'exact' if point.exact else f'{mismatches} WRONG'}; "
                        f"load {point.load:.1f}"
                    )
            del store
    finally:
        shutil.rmtree(work, ignore_errors=True)
        drop_postgresql(admin_url, args.pg_database)

    report(points, builds)
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    tag = f"-{args.label}" if args.label else ""
    path = RESULTS / f"growth-{stamp}{tag}.json"
    document = {
        "at": stamp,
        "git": git_state(),
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        "postgresql": postgresql_settings(admin_url),
        "builds": builds,
        "points": [asdict(p) for p in points],
    }
    path.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"figures written to {path.relative_to(ROOT)}")
    return 0 if all(p.exact for p in points) else 1


def report(points: list[Point], builds: dict[int, dict[str, float]]) -> None:
    print()
    print(f"{'store':>11}{'list':>11}{'seconds':>9}{'µs/addr':>9}{'PSS MB':>8}{'B/addr':>8}")
    for p in points:
        print(
            f"{p.store:>11,}{p.addresses:>11,}{p.seconds:>9.2f}{p.micros_per_address:>9.2f}"
            f"{p.peak_pss / MB:>8.0f}{p.bytes_per_address:>8.0f}"
        )
    print()
    for size, build in builds.items():
        print(f"store {size:>11,}: {build['disk_bytes_per_subject']:.0f} bytes on disk a subject")
    common = max(
        (
            n
            for n in {p.addresses for p in points}
            if all(any(q.store == s and q.addresses == n for q in points) for s in builds)
        ),
        default=None,
    )
    curves = []
    if common is not None:
        by_store = [p for p in points if p.addresses == common]
        curves.append((f"across stores, list {common:,}", by_store, "store"))
    largest = max(builds, default=None)
    by_list = [p for p in points if p.store == largest]
    curves.append((f"across lists, store {largest:,}", by_list, "addresses"))
    for name, curve, axis in curves:
        values = [p.micros_per_address for p in curve]
        steps = " → ".join(f"{getattr(p, axis):,}: {p.micros_per_address:.2f}" for p in curve)
        spread = ratio(values)
        verdict = "PASS" if spread <= GROWTH_TARGET else "MISS"
        print(f"{name}: {steps} µs; ratio {spread:.2f}x (target <= {GROWTH_TARGET}x) {verdict}")
    peak = max(
        (p.bytes_per_address for p in points if p.addresses == max(q.addresses for q in points)),
        default=0.0,
    )
    print(f"peak PSS growth at the largest list: {peak:.0f} bytes an address")


if __name__ == "__main__":
    sys.exit(main())
