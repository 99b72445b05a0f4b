"""The service under test: `suppression serve` (gunicorn) on loopback, and its memory."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import requests

SUPPRESSION = str(Path(sys.executable).with_name("suppression"))
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def children(pid: int) -> list[int]:
    """The processes `pid` started, from any of its threads: a threaded worker
    starts the check's helpers from the thread serving the request, and the
    kernel lists a child under the thread that started it."""
    found: list[int] = []
    try:
        threads = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for thread in threads:
        try:
            found += [int(p) for p in (thread / "children").read_text().split()]
        except OSError:
            continue  # the thread ended
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid`: its children, theirs, and so on."""
    found = []
    for child in children(pid):
        found.append(child)
        found += descendants(child)
    return found


def rss(pid: int) -> int:
    """Resident set size in bytes, 0 once the process is gone."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


def pss(pid: int) -> int:
    """Proportional set size in bytes: the process's private pages plus its share
    of the pages it shares with others (libraries, a parent's pages after fork), so
    that a sum over processes counts each physical page once; 0 once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, IndexError, ValueError):
        return 0
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS


class Server:
    """One `suppression serve` run; the process it execs into is gunicorn's master."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path):
        self.env = env
        self.workers = workers
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def __enter__(self) -> Server:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [SUPPRESSION, "serve", "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {self.log_path}")
            try:
                ready = requests.get(self.base + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                ready = False
            if ready and len(children(self.process.pid)) >= self.workers:
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the server did not get ready; see {self.log_path}")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self._log is not None:
            self._log.close()

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return children(self.process.pid)

    def serving_pids(self) -> list[int]:
        """The workers and every process they started (the check's indexing helpers)."""
        assert self.process is not None
        return descendants(self.process.pid)

    def create_key(self, role: str, name: str) -> str:
        done = subprocess.run(
            [SUPPRESSION, "keys", "create", "--role", role, "--name", name],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.strip().splitlines()[-1]

    def create_staff(self, username: str, password: str) -> None:
        subprocess.run(
            [SUPPRESSION, "staff", "create", "--role", "staff", "--username", username, *STDIN],
            env=self.env,
            input=password + "\n",
            capture_output=True,
            text=True,
            check=True,
        )


STDIN = ["--password-stdin"]


class MemorySampler:
    """Samples the memory and CPU time of the server every `interval` seconds while
    in use: RSS and CPU of the workers and every process they started (the check
    helpers), and PSS of all of them with gunicorn's master: the server's memory."""

    def __init__(self, server: Server, interval: float = 0.05):
        self.server = server
        self.interval = interval
        self.peak_sum = 0
        self.peak_pss_sum = 0
        self.peak_by_pid: dict[int, int] = {}
        self.baseline_sum = 0
        self.samples = 0
        self.cpu_at_start: dict[int, float] = {}
        self.cpu_last: dict[int, float] = {}
        self.cpu_used = 0.0  # CPU seconds the serving processes spent while sampled
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> int:
        total = 0
        for pid in self.server.serving_pids():
            cpu = cpu_seconds(pid)
            if cpu:
                self.cpu_last[pid] = cpu
            size = rss(pid)
            total += size
            if size > self.peak_by_pid.get(pid, 0):
                self.peak_by_pid[pid] = size
        self.samples += 1
        return total

    def _pss_sum(self) -> int:
        assert self.server.process is not None
        master = self.server.process.pid
        return sum(pss(pid) for pid in [master, *self.server.serving_pids()])

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak_sum = max(self.peak_sum, self._sample())
            self.peak_pss_sum = max(self.peak_pss_sum, self._pss_sum())

    def __enter__(self) -> MemorySampler:
        self.cpu_at_start = {pid: cpu_seconds(pid) for pid in self.server.serving_pids()}
        self.baseline_sum = self.peak_sum = self._sample()
        self.peak_pss_sum = self._pss_sum()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_sum = max(self.peak_sum, self._sample())
        # A process that ended while sampled counts with its last reading.
        self.cpu_used = sum(
            cpu - self.cpu_at_start.get(pid, 0.0) for pid, cpu in self.cpu_last.items()
        )

    @property
    def peak_worker(self) -> int:
        """The peak of the worker that grew most: the one that served the request."""
        return max(self.peak_by_pid.values(), default=0)


class SyncWorker:
    """`suppression sync --loop` (the Procfile's worker) in a subprocess, killed and
    started again on demand; also a context manager that starts and stops it."""

    def __init__(self, env: dict[str, str], log: Path, profile: Path | None = None):
        self.env = env
        self.log = log
        self.profile = profile  # cProfile output of each start (sync_faults' `--profile`)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills: list[dict[str, Any]] = []

    def start(self) -> None:
        command = [SUPPRESSION, "sync", "--loop"]
        if self.profile is not None:
            out_file = f"{self.profile}-{self.starts}.prof"
            command = [sys.executable, "-m", "cProfile", "-o", out_file, *command]
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                command, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    def kill(self, arrived: int, elapsed: float) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills.append({"at_seconds": round(elapsed, 2), "arrived": arrived})
        self.start()

    def cpu(self) -> float:
        """CPU seconds of the current process."""
        assert self.process is not None
        return cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SyncWorker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
