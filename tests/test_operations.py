"""Operating the real command: SIGTERM, as orchestrators stop a job (rows in flight finish and
are kept, the run is recorded as interrupted with its run_end line, exit 143; a second SIGTERM
cancels at once), and progress lines for logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pytest
from test_run import EXTRACT, KEY, setup

from extract.providers.testserver import ServerThread

pytestmark = pytest.mark.slow


def start(p: Path, *sets: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [EXTRACT, "run", str(p), *[a for s in sets for a in ("--set", s)]],
        env={**os.environ, "TEST_EXTRACT_KEY": KEY},
        cwd=p.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_requests(server: ServerThread, n: int) -> None:
    deadline = time.monotonic() + 30
    while server.stats()["total_requests"] < n:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_sigterm_lets_rows_in_flight_finish(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=60)
    server.configure(latency_ms=400)
    proc = start(p, "run.concurrency=4")
    wait_for_requests(server, 6)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    [end] = [json.loads(x) for x in err.splitlines() if '"run_end"' in x]
    assert (end["status"], end["stop_reason"]) == ("interrupted", "stopped by SIGTERM")
    sent = server.stats()["total_requests"]
    # every request sent was answered and kept: nothing paid for was thrown away
    assert end["rows_ok"] == end["requests"] == sent < 60
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM tickets").fetchall() == [(sent,)]
    con.close()
    server.configure(latency_ms=0)
    rest = start(p)
    _, err = rest.communicate(timeout=60)
    assert rest.returncode == 0, err
    assert server.stats()["total_requests"] == 60


def test_a_second_sigterm_stops_at_once(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=20)
    server.configure(latency_ms=20_000)
    proc = start(p, "run.concurrency=4", "run.grace_s=60")
    wait_for_requests(server, 4)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert time.monotonic() - started < 10
    assert proc.returncode == 143, err
    [end] = [json.loads(x) for x in err.splitlines() if '"run_end"' in x]
    assert end["stop_reason"] == "stopped by SIGTERM (twice: rows in flight were cancelled)"
    assert end["rows_ok"] == 0


def test_progress_lines_off_a_terminal(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=30)
    server.configure(latency_ms=100)
    proc = subprocess.run(
        [EXTRACT, "run", str(p), "--set", "run.concurrency=4", "--progress-every", "0.2"],
        env={**os.environ, "TEST_EXTRACT_KEY": KEY},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in proc.stderr.splitlines()]
    progress = [x for x in lines if x["event"] == "progress"]
    assert len(progress) >= 2
    assert set(progress[0]) == {
        "event", "rows_done", "rows_failed", "rows_pending", "rows_total", "rows_per_s", "eta_s",
        "tokens", "cost_usd",
    }  # fmt: skip
    assert [x["rows_done"] for x in progress] == sorted(x["rows_done"] for x in progress)
    assert all(x["rows_total"] == 30 for x in progress)
    assert (lines[0]["event"], lines[-1]["event"]) == ("run_start", "run_end")
