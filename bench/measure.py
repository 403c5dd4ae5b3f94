"""Processes: the test server, and each client as a child whose own rusage is its cost.

Standard library only, on purpose. On Linux a child's ru_maxrss starts from the RSS high-water
mark of the process that spawned it (exec copies the old address space's mark), so the process
that launches the clients must stay small: it imports neither `extract` (duckdb, polars, pyarrow)
nor the peers. That is why the server is started here through its documented command,
`python -m extract.providers.testserver`, the very command its `start_subprocess` runs, rather
than by importing that function. An empty interpreter's figure is measured and shown.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ServerSpec:
    """How the test server behaves: mean latency +- jitter, fault rates, the Retry-After header."""

    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    retry_after: str = "0"
    seed: int = 0

    def args(self) -> list[str]:
        args = [
            "--latency-ms", repr(self.latency_ms),
            "--jitter-ms", repr(self.jitter_ms),
            "--retry-after", self.retry_after,
            "--seed", str(self.seed),
        ]  # fmt: skip
        if self.faults:
            args += ["--faults", ",".join(f"{k}={v!r}" for k, v in self.faults.items())]
        return args


class Server:
    """`python -m extract.providers.testserver` in its own process; a context manager."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec
        self.proc: subprocess.Popen[str] | None = None
        self.base_url = ""

    def __enter__(self) -> Server:
        cmd = [PYTHON, "-m", "extract.providers.testserver", "--host", "127.0.0.1", "--port", "0"]
        self.proc = subprocess.Popen(
            cmd + self.spec.args(), stdout=subprocess.PIPE, text=True, cwd=ROOT, env=child_env()
        )
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            ready = sel.select(30)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("listening on "):
            self.__exit__()
            raise RuntimeError(f"the test server did not start: {line!r}")
        self.base_url = line.removeprefix("listening on ").strip()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None

    def _call(self, method: str, path: str) -> dict[str, Any]:
        root = self.base_url.removesuffix("/v1")
        request = urllib.request.Request(root + path, method=method)
        with urllib.request.urlopen(request, timeout=30) as resp:
            data: dict[str, Any] = json.loads(resp.read())
        return data

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def reset(self) -> None:
        self._call("POST", "/reset")

    def cpu_seconds(self) -> float:
        """User + sys CPU the server process has used so far."""
        assert self.proc is not None
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if "PYTHONPATH" in env else "")
    # No .pyc writes during a measured run; they are there after the first run anyway.
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@dataclass(frozen=True)
class Usage:
    """One child's cost, from os.wait4: wall seconds, user + sys CPU, peak RSS."""

    exit_code: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float


def run_child(cmd: list[str], *, log: Path, timeout: float) -> Usage:
    """Run `cmd` to its end (killed after `timeout` s) and return its own rusage."""
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, cwd=ROOT, env=child_env())
        timer = threading.Timer(timeout, lambda: os.kill(proc.pid, signal.SIGKILL))
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # ru_maxrss is in KiB on Linux.
    return Usage(proc.returncode, wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024)
