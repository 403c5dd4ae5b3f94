"""A full disk mid-run, for real: the output on a small tmpfs. The run stops with a one-line
error and exit 8, loses nothing it journaled, and once there is room the same command finishes
the job exactly once."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_ledger import FIELDS, table
from test_run import EXTRACT, KEY, setup

from extract.providers.testserver import ServerThread

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MB tmpfs (mounting needs root: CI runs as root here)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1000k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def run(p: Path, output: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXTRACT, "run", str(p), "--set", f"output.path={output}", "--set", "run.concurrency=8"],
        capture_output=True,
        text=True,
        env={**os.environ, "TEST_EXTRACT_KEY": KEY},
        cwd=p.parent,
        timeout=300,
    )


def test_disk_full_then_room_again(tmp_path: Path, server: ServerThread, small_disk: Path) -> None:
    n = 2000
    ref = tmp_path / "ref"
    ref.mkdir()
    assert run(setup(ref, server, rows=n), ref / "r.duckdb").returncode == 0
    expected = table(ref / "r.duckdb", FIELDS)

    work = tmp_path / "work"
    work.mkdir()
    p = setup(work, server, rows=n)
    server.reset()
    db = small_disk / "r.duckdb"
    full = run(p, db)
    assert full.returncode == 8, full.stderr
    [message] = [x for x in full.stderr.splitlines() if x.startswith("extract: error:")]
    assert "No space left on device" in message and str(small_disk) in message
    assert "Traceback" not in full.stderr
    sent = server.stats()["total_requests"]
    assert 0 < sent < n

    subprocess.run(["mount", "-o", "remount,size=100m", str(small_disk)], check=True)
    again = run(p, db)
    assert again.returncode == 0, again.stderr
    assert table(db, FIELDS) == expected
    # only the rows in flight when the disk filled were asked twice
    assert server.stats()["total_requests"] <= n + 2 * 8
    assert sorted(x.name for x in small_disk.iterdir()) == ["r.duckdb"]
