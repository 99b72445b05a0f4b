"""Sync under faults: N suppressions pushed to the fake Meta and Keap servers while
they answer 429/503 part of the time and the worker is killed and restarted.

    .venv/bin/python -m benchmarks.sync_faults                 # Meta 1,000,000, Keap 20,000
    .venv/bin/python -m benchmarks.sync_faults --size 50000 --keap-size 5000   # smoke

Per destination, a fresh PostgreSQL database gets N subjects opted out of `all`
(binary COPY, like benchmarks/store.py; keys and sealed addresses from the same
AddressVault the worker builds from the instance's keys.json). The fakes
(suppression.connectors.fakes) run on loopback in this process; the worker is
`suppression sync --loop` in a subprocess. It registers the destination, finds it new,
reconciles (queues every subject), and drains the outbox. Meanwhile:

- the fake answers 503 to a share of calls (`--fail-rate`, seeded) and every 10
  seconds the next call answers 429 with Retry-After: 1;
- the worker is killed with SIGKILL once a third of the subjects have arrived (and
  again at two thirds), and started again at once. On PostgreSQL the new worker
  puts the killed worker's claimed rows back as soon as its connections are gone
  (lease.release_dead_claims); rows of a worker still alive wait for their lease
  (SYNC_LEASE_SECONDS, 15 s here).

At the end every subject must be at the platform: Meta's audience `removed` set holds
each address's SHA-256 (Meta's normalisation), Keap's `opted_out` each address.

Meta runs twice by default (`--faults both`): once without faults (no 503, no 429,
no kill), once with them, each on a fresh database. Before each, the **transport
floor** is measured against the same fake server: a client that only sends the
pre-built 10,000-row batches (the same form body the connector sends) one after
another over one HTTP connection, then the fake forgets them. Targets: without
faults, the time from the worker's first start to the last subject arriving
<= 2x the transport floor; with faults, the extra time over the run without
faults <= the faults' own pauses (each 429's Retry-After, each 503's first
backoff, SYNC_BACKOFF_SECONDS) plus 20% of the run without faults. The hashing
floor (meta_email_sha256 of the same addresses) and open + hash are printed too.

Keap takes one address per HTTP call (no batch endpoint exists), so 1,000,000 Keap
calls through a single-threaded Python fake would take far longer than the run's budget;
Keap runs at --keap-size (default 20,000), Meta at --size.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg

from benchmarks.server import SyncWorker
from benchmarks.store import drop_postgresql, recreate_postgresql
from suppression.config.environment import normalise_database_url
from suppression.config.settings import Settings
from suppression.connectors.fakes import FakeKeap, FakeMeta, Fault, environment_for
from suppression.domain.audience_hashes import meta_email_sha256
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault
from suppression.store import engines as database

RESULTS = Path(__file__).with_name("results")
KEY_ENV = ("ADDRESS_INDEX_KEY", "ADDRESS_SEALING_KEYS", "SECRET_KEY", "DATABASE_URL")
DOMAIN = "sync.example"
DESTINATION_NAMES = ("keap", "meta", "google", "linkedin", "microsoft")


def address(i: int) -> str:
    return f"sync-{i:07d}@{DOMAIN}"


def floor_seconds(addresses: list[str], repeat: int = 2) -> tuple[float, float]:
    """Best of `repeat`: wall and CPU seconds to hash every address as Meta wants it."""
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        hashes = [meta_email_sha256(a) for a in addresses]
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
        del hashes
    return best_wall, best_cpu


def transport_floor(fake: FakeMeta, audience: str, hashes: list[str], batch: int) -> float:
    """Seconds for the fake to accept every hash from a client that only sends
    pre-built batches over one connection (the body the connector sends: form
    fields holding JSON); the fake then forgets them."""
    bodies = [
        urlencode(
            {
                "payload": json.dumps({"schema": "EMAIL_SHA256", "data": hashes[i : i + batch]}),
                "session": json.dumps(
                    {"session_id": i + 1, "batch_seq": 1, "last_batch_flag": True}
                ),
            }
        ).encode()
        for i in range(0, len(hashes), batch)
    ]
    target = urlsplit(fake.base_url)
    headers = {
        "Authorization": f"Bearer {fake.access_token}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port)
    started = time.perf_counter()
    for body in bodies:
        connection.request("DELETE", f"{target.path}/{audience}/users", body, headers)
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"transport floor: the fake answered {answer.status}")
    seconds = time.perf_counter() - started
    connection.close()
    with fake.lock:
        fake.removed[audience].clear()
        fake.request_count = 0
        fake.batch_sizes.clear()
    return seconds


def seed(dsn: str, url: str, vault: AddressVault, addresses: list[str]) -> float:
    """N subjects opted out of `all`, via binary COPY; no consent_events (see store.py)."""
    started = time.perf_counter()
    database.upgrade(url)
    now = datetime.now(UTC)
    changed = now - timedelta(days=3)
    with psycopg.connect(dsn) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY subjects (id, email_index, email_sealed, created_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "bytea", "bytea", "timestamptz"])
            for i, item in enumerate(addresses):
                copy.write_row((i + 1, vault.index(item), vault.seal(item), changed))
        with cursor.copy(
            "COPY consent_states (subject_id, purpose, status, changed_at, source, event_id) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "text", "timestamptz", "text", "int8"])
            for i in range(len(addresses)):
                copy.write_row((i + 1, "all", "opted_out", changed, "benchmark", i + 1))
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('subjects', 'id'), "
            "(SELECT max(id) FROM subjects))"
        )
        connection.commit()
        connection.autocommit = True
        cursor.execute("ANALYZE")
    return time.perf_counter() - started


def run_destination(
    name: str,
    size: int,
    args: argparse.Namespace,
    base_env: dict[str, str],
    vault: AddressVault,
    work: Path,
    faults: bool = True,
) -> dict[str, Any]:
    addresses = [address(i) for i in range(size)]
    db = f"{args.pg_database}_{name}"
    dsn = args.pg_admin_url.rsplit("/", 1)[0] + "/" + db
    url = normalise_database_url(dsn)
    recreate_postgresql(args.pg_admin_url, db)
    seeded = seed(dsn, url, vault, addresses)
    print(f"{name}: {size} subjects opted out seeded in {seeded:.1f} s")
    floor_wall, floor_cpu = floor_seconds(addresses, args.floor_repeat)
    sealed = [vault.seal(a) for a in addresses[: min(size, 100_000)]]
    wall = time.perf_counter()
    for item in sealed:
        meta_email_sha256(vault.open(item))
    open_floor = (time.perf_counter() - wall) * size / len(sealed)  # open + hash, scaled
    del sealed
    print(f"{name}: floor (normalise + SHA-256 of {size} addresses): {floor_wall:.2f} s wall")
    if name == "meta":
        expected = {meta_email_sha256(a) for a in addresses}
        fake: FakeMeta | FakeKeap = FakeMeta(keep_requests=False, seed=args.seed)
    else:
        expected = set(addresses)
        fake = FakeKeap(keep_requests=False, seed=args.seed)
    fake.start()
    transport = None
    try:
        if name == "meta":
            audience = next(iter(fake.audiences))
            held = fake.removed[audience]  # type: ignore[union-attr]
            env_fake = environment_for(meta=fake)  # type: ignore[arg-type]
            transport = min(
                transport_floor(fake, audience, sorted(expected), 10_000)  # type: ignore[arg-type]
                for _ in range(args.floor_repeat)
            )
            print(f"{name}: transport floor (pre-built batches, one connection): {transport:.2f} s")
        else:
            held = fake.opted_out  # type: ignore[union-attr,assignment]
            env_fake = environment_for(keap=fake)  # type: ignore[arg-type]
        env = {
            **base_env,
            **env_fake,
            "DATABASE_URL": url,
            **{f"{other.upper()}_ENABLED": "false" for other in DESTINATION_NAMES if other != name},
            "SYNC_LEASE_SECONDS": str(args.lease_seconds),
            "SYNC_BACKOFF_SECONDS": "1",
            "SYNC_BACKOFF_MAX_SECONDS": "5",
            "SYNC_RATE_LIMIT_SECONDS": "1",
            "SYNC_POLL_SECONDS": "1",
            "SYNC_MAX_ATTEMPTS": "50",
        }
        if name == "keap":
            env.update(KEAP_CONCURRENCY=str(args.keap_concurrency), KEAP_MAX_RPS="0")
        if faults:
            fake.flaky(args.fail_rate, Fault(503, {"error": "unavailable"}))
        mode = "faults" if faults else "clean"
        profile = Path(args.profile) / f"{name}-{mode}" if args.profile else None
        worker = SyncWorker(env, work / f"worker-{name}-{mode}.log", profile)
        stop_faults = threading.Event()

        def throttle() -> None:  # the next call answers 429, every few seconds
            while faults and args.throttle_every and not stop_faults.wait(args.throttle_every):
                with fake.lock:
                    if not fake.faults:
                        fake.fail_next(
                            1, Fault(429, {"error": "rate limited"}, {"Retry-After": "1"})
                        )

        thrower = threading.Thread(target=throttle, daemon=True)
        started = time.perf_counter()
        worker.start()
        thrower.start()
        kill_at = [size // 3, 2 * size // 3][: args.kills if faults else 0]
        deadline = started + args.timeout
        arrived = 0
        last_print = started
        try:
            while time.perf_counter() < deadline:
                with fake.lock:
                    arrived = len(held)
                if kill_at and arrived >= kill_at[0]:
                    kill_at.pop(0)
                    worker.kill(arrived, time.perf_counter() - started)
                    print(f"{name}: worker killed (SIGKILL) at {arrived} arrived; restarted")
                if arrived >= len(expected) and expected <= set(held):
                    break
                if time.perf_counter() - last_print > 15:
                    last_print = time.perf_counter()
                    print(f"{name}: {arrived}/{size} after {last_print - started:.0f} s")
                time.sleep(0.2)
            elapsed = time.perf_counter() - started
        finally:
            stop_faults.set()
            worker.stop()
        with fake.lock:
            missed = len(expected - set(held))
            calls = fake.request_count
            faults_served = dict(fake.faults_served)
            worker_log = worker.log.read_text(errors="replace")
        parked = _scalar(dsn, "SELECT count(*) FROM destination_outbox WHERE failed_at IS NOT NULL")
        waiting = _scalar(dsn, "SELECT count(*) FROM destination_outbox")
        confirmed = _scalar(
            dsn, "SELECT count(*) FROM destination_subjects WHERE suppressed IS TRUE"
        )
    finally:
        fake.close()
        if not args.keep:
            drop_postgresql(args.pg_admin_url, db)
    # What the faults cost by themselves: each 429's Retry-After (1 s here) and
    # each 503's first backoff (SYNC_BACKOFF_SECONDS, 1 s here).
    pauses = float(sum(faults_served.values()))
    return {
        "destination": name,
        "faults": faults,
        "faults_served": faults_served,
        "fault_pauses_seconds": pauses,
        "transport_floor_seconds": transport,
        "ratio_to_transport": elapsed / transport if transport else None,
        "size": size,
        "seed_seconds": seeded,
        "floor_wall_seconds": floor_wall,
        "floor_cpu_seconds": floor_cpu,
        "open_and_hash_seconds": open_floor,
        "ratio_to_open_and_hash": elapsed / open_floor if open_floor else None,
        "seconds": elapsed,
        "ratio": elapsed / floor_wall if floor_wall else None,
        "missed": missed,
        "timed_out": missed > 0,
        "platform_calls": calls,
        "kills": worker.kills,
        "worker_starts": worker.starts,
        "outbox_rows_left": waiting,
        "outbox_parked": parked,
        "confirmed_in_store": confirmed,
        "rate_limited_lines": worker_log.count("429") + worker_log.count("rate"),
        "fail_rate": args.fail_rate,
    }


def judge(run: dict[str, Any], clean: dict[str, Any] | None) -> tuple[bool, str]:
    """0 missed always; without faults <= 2x the transport floor; with faults, the
    extra time over the clean run <= the faults' pauses + 20% of the clean run."""
    if run["missed"]:
        return False, f"MISS ({run['missed']} missed)"
    if not run["faults"]:
        if run["transport_floor_seconds"] is None:
            return True, "PASS (0 missed)"
        ok = run["seconds"] <= 2 * run["transport_floor_seconds"]
        return ok, f"{'PASS' if ok else 'MISS'} (0 missed; <= 2x transport)"
    if clean is None:
        return True, "PASS (0 missed; no clean run to compare)"
    budget = clean["seconds"] * 1.2 + run["fault_pauses_seconds"]
    run["faults_budget_seconds"] = budget
    ok = run["seconds"] <= budget
    return ok, f"{'PASS' if ok else 'MISS'} (0 missed; <= clean + pauses + 20%: {budget:.1f} s)"


def _scalar(dsn: str, sql: str) -> int:
    with psycopg.connect(dsn) as connection:
        return int(connection.execute(sql).fetchone()[0])  # type: ignore[index]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="Meta suppressions")
    parser.add_argument("--keap-size", type=int, default=20_000, help="Keap suppressions")
    parser.add_argument("--only", choices=("meta", "keap"), help="one destination only")
    parser.add_argument("--fail-rate", type=float, default=0.1, help="share of calls failing 503")
    parser.add_argument("--throttle-every", type=float, default=10.0, help="seconds between 429s")
    parser.add_argument("--kills", type=int, default=2, choices=(0, 1, 2))
    parser.add_argument(
        "--faults", choices=("both", "on", "off"), default="both", help="Meta: runs with/without"
    )
    parser.add_argument("--lease-seconds", type=float, default=15.0)
    parser.add_argument("--keap-concurrency", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument("--floor-repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="bench_sync")
    parser.add_argument("--label", default="")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--profile", help="folder: cProfile each worker start there")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # progress in logs

    work = Path(tempfile.mkdtemp(prefix="bench-sync-"))
    instance = work / "instance"
    env = {k: v for k, v in os.environ.items() if k not in KEY_ENV}
    env.update(SUPPRESSION_ENV="development", SUPPRESSION_INSTANCE=str(instance))
    for key in list(env):
        if key.split("_", 1)[0] in {n.upper() for n in DESTINATION_NAMES}:
            env.pop(key)
    settings = Settings.from_env(env)  # generates the instance's keys.json
    keys = settings.keys
    vault = AddressVault(keys.index_key, AddressSealer(keys.sealing_keys, keys.sealing_key_current))
    print(f"work folder {work}")
    meta_modes = {"both": (False, True), "on": (True,), "off": (False,)}[args.faults]
    plan = [("meta", args.size, f) for f in meta_modes] + [("keap", args.keap_size, True)]
    if args.only:
        plan = [p for p in plan if p[0] == args.only]
    runs = []
    load_before = os.getloadavg()
    for name, size, faults in plan:
        runs.append(run_destination(name, size, args, env, vault, work, faults))
        print(f"{name}: done, load average {os.getloadavg()}")

    print()
    print(
        f"{'destination':<12}{'faults':>7}{'N':>10}{'seconds':>9}{'transport':>10}{'x':>6}"
        f"{'hash s':>8}{'open+hash':>10}{'pauses':>8}{'missed':>8}{'calls':>7}{'kills':>6}"
        f"{'parked':>7}  target"
    )
    clean = {r["destination"]: r for r in runs if not r["faults"]}
    for run in runs:
        run["target_met"], target = judge(run, clean.get(run["destination"]))
        transport = run["transport_floor_seconds"]
        print(
            f"{run['destination']:<12}{'on' if run['faults'] else 'off':>7}{run['size']:>10}"
            f"{run['seconds']:>9.1f}{transport or 0:>10.2f}{run['ratio_to_transport'] or 0:>6.1f}"
            f"{run['floor_wall_seconds']:>8.2f}{run['open_and_hash_seconds']:>10.2f}"
            f"{run['fault_pauses_seconds']:>8.0f}{run['missed']:>8}{run['platform_calls']:>7}"
            f"{len(run['kills']):>6}{run['outbox_parked']:>7}  {target}"
        )
    result = {
        "args": vars(args),
        "when": datetime.now(UTC).isoformat(),
        "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "runs": runs,
        "commit": _git("rev-parse", "HEAD"),
        "changed": _git("status", "--porcelain", "suppression").splitlines(),
    }
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    label = f"-{args.label}" if args.label else ""
    out = RESULTS / f"sync-faults-{stamp}-{args.size}{label}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"written {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if all(r["missed"] == 0 for r in runs) else 1


def _git(*command: str) -> str:
    done = subprocess.run(["git", *command], capture_output=True, text=True, check=False)
    return done.stdout.strip()


if __name__ == "__main__":
    sys.exit(main())
