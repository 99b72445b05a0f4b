"""Import benchmark: a suppression list of N rows (default 1,000,000) through the
service's importer, on SQLite and PostgreSQL, beside a floor measured in the same
run (read the CSV, canonicalise, keyed index and seal every address in one process).

    .venv/bin/python -m benchmarks.imports                # 1,000,000 rows, both databases
    .venv/bin/python -m benchmarks.imports --size 50000   # smoke test

Target: 1,000,000 rows well under a minute on PostgreSQL (PASS under 60 s).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from benchmarks.store import recreate_postgresql
from suppression.domain.addresses import canonicalise
from suppression.domain.sealing import AddressSealer
from suppression.domain.vault import AddressVault
from suppression.services.imports.importer import import_csv
from suppression.store import engines as database
from suppression.store.models import ConsentEvent, ConsentState, HashedSuppression, Subject

RESULTS = Path(__file__).resolve().parent / "results"
VAULT = AddressVault(b"i" * 32, AddressSealer({1: b"s" * 32}, 1))
PURPOSES = ("email_marketing", "ad_audiences")


def write_list(path: Path, size: int, seed: int) -> dict[str, int]:
    """A previous provider's export: mostly plain opt-outs, some with country and
    purpose, 5% hashed (in a second file: one list is plain or hashed), 0.2% bad rows."""
    rng = random.Random(seed)
    kinds = {"plain": 0, "hashed": 0, "bad": 0}
    with path.open("w", newline="") as plain, path.with_suffix(".hashed.csv").open("w") as hashed:
        writer = csv.writer(plain)
        writer.writerow(["email", "status", "purpose", "country", "occurred_at", "source"])
        hashed.write("email_sha256,occurred_at\n")
        for n in range(size):
            roll = rng.random()
            address = f"Person.{n}@Example{n % 5000}.com"
            when = f"2025-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z"
            if roll < 0.002:
                writer.writerow([f"broken-{n}", "", "", "", "", "old_esp"])
                kinds["bad"] += 1
            elif roll < 0.052:
                digest = hashlib.sha256(address.strip().lower().encode()).hexdigest()
                hashed.write(f"{digest},{when}\n")
                kinds["hashed"] += 1
            else:
                country = "US" if roll < 0.15 else ""
                purpose = "email_marketing" if roll < 0.3 else ""
                writer.writerow([address, "opted_out", purpose, country, when, "old_esp"])
                kinds["plain"] += 1
    return kinds


def floor(path: Path) -> float:
    started = time.perf_counter()
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            canonical = canonicalise(row[0])
            if canonical is not None:
                VAULT.index(canonical)
                VAULT.seal(canonical)
    return time.perf_counter() - started


def run_import(url: str, path: Path) -> dict[str, float | int]:
    database.upgrade(url)
    engine = database.make_engine(url)
    session = database.make_session_factory(engine)()
    now = datetime.now(UTC)
    started = time.perf_counter()
    totals = {"rows": 0, "imported": 0, "rejected": 0}
    for source in (path, path.with_suffix(".hashed.csv")):
        with source.open("rb") as stream:
            for step in import_csv(session, VAULT, stream, PURPOSES, "bench", now):
                session.commit()
                report = step.report
        totals["rows"] += report.rows
        totals["imported"] += report.imported
        totals["rejected"] += report.rejected_total
    seconds = time.perf_counter() - started
    counts = {
        name: session.scalar(select(func.count()).select_from(model)) or 0
        for name, model in (
            ("subjects", Subject),
            ("events", ConsentEvent),
            ("states", ConsentState),
            ("hashed", HashedSuppression),
        )
    }
    session.close()
    engine.dispose()
    return {"seconds": seconds, **totals, **counts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20261129)
    parser.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--pg-database", default="bench_imports")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "list.csv"
        kinds = write_list(path, args.size, args.seed)
        floor_seconds = floor(path)
        print(
            f"{args.size:,} rows: {kinds}; floor (parse + canonicalise + index + seal): "
            f"{floor_seconds:.1f} s"
        )
        runs = {}
        if args.db in ("sqlite", "both"):
            runs["sqlite"] = run_import(f"sqlite:///{Path(folder) / 'import.db'}", path)
        if args.db in ("postgresql", "both"):
            recreate_postgresql(args.pg_admin_url, args.pg_database)
            base = args.pg_admin_url.rsplit("/", 1)[0].replace(
                "postgresql://", "postgresql+psycopg://"
            )
            runs["postgresql"] = run_import(f"{base}/{args.pg_database}", path)
    expected = kinds["plain"] + kinds["hashed"]
    print(
        f"{'database':<11} {'seconds':>8} {'rows/s':>9} {'x floor':>8}  imported  rejected  "
        f"under 60 s"
    )
    for name, run in runs.items():
        ok = run["imported"] == expected and run["rejected"] == kinds["bad"]
        verdict = "PASS" if run["seconds"] < 60 else "MISS"
        print(
            f"{name:<11} {run['seconds']:>8.1f} {run['rows'] / run['seconds']:>9,.0f} "
            f"{run['seconds'] / floor_seconds:>8.1f}  {run['imported']:>8,}  "
            f"{run['rejected']:>8,}  {verdict}{'' if ok else '  (COUNTS WRONG)'}"
        )
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"imports-{stamp}-{args.size}.json"
    out.write_text(
        json.dumps(
            {"size": args.size, "kinds": kinds, "floor_seconds": floor_seconds, "runs": runs},
            indent=2,
        )
    )
    print(f"written {out}")


if __name__ == "__main__":
    main()
