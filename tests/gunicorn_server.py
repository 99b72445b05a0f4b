"""The real server for the tests that need it: `suppression serve` (gunicorn with
the project's gunicorn.conf.py) on a free loopback port, its output in a file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

SUPPRESSION = str(Path(sys.executable).with_name("suppression"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def workers_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class Served:
    """One `suppression serve` run (or `command`, started by the shell with PORT set),
    from `cwd`, with `env` added to this process's; its output in a file of
    `log_folder`."""

    def __init__(
        self,
        env: dict[str, str],
        log_folder: Path,
        *args: str,
        workers: int = 2,
        cwd: Path | None = None,
        command: str | None = None,
    ):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.log_path = log_folder / f"serve-{self.port}.log"
        self.command = (
            ["sh", "-c", f"exec {command}"]
            if command
            else [SUPPRESSION, "serve", "--port", str(self.port), *args]
        )
        path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        self.env = {**os.environ, **env, "PORT": str(self.port), "PATH": path}
        if command:
            self.env["GUNICORN_BIND"] = f"127.0.0.1:{self.port}"  # loopback only
        self.cwd = cwd or log_folder
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Served:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                self.command, env=self.env, cwd=self.cwd, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.output()}")
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=2) as answer:
                    ready = answer.status == 200
            except OSError:
                ready = False
            if ready and len(workers_of(self.process.pid)) >= self.workers:
                return self
            time.sleep(0.1)
        self.__exit__()
        raise RuntimeError(f"the server did not get ready:\n{self.output()}")

    def __exit__(self, *_exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        return workers_of(self.process.pid)

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")
