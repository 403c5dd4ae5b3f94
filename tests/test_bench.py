"""The benchmark runs end to end on a small input and prints a table of the documented shape."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

#: subprocess runs of the real command: the slow tier (pytest -m "not slow" skips them)
pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
HEADER = [
    "client", "wall s", "run s", "rows/s", "Little's-law limit rows/s", "share of limit",
    "CPU s / 1k rows", "peak RSS MB", "requests / valid row", "valid", "in errors", "lost",
]  # fmt: skip


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_bench_cpu_scenario_prints_a_table_and_loses_no_row() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--scenario", "cpu", "--rows", "200",
         "--reps", "1", "--clients", "extract,floor"],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    start = lines.index("### cpu: client CPU cost")
    table = [line for line in lines[start:] if line.startswith("|")]
    assert _cells(table[0]) == HEADER
    assert _cells(table[1]) == ["---"] * len(HEADER)
    rows = {(cells := _cells(line))[0]: cells for line in table[2:4]}
    assert sorted(rows) == ["extract", "floor"]
    for name, cells in rows.items():
        assert len(cells) == len(HEADER), name
        valid, errors, lost = cells[-3:]
        assert (valid, errors, lost) == ("200", "0", "0"), name
        # 0 ms latency: no Little's-law limit, and no request sent twice without a fault.
        assert cells[4:6] == ["none (0 ms)", "n/a"], name
        assert cells[8].split()[0] == "1.000", name
    assert "(" in rows["extract"][6] and rows["extract"][6].endswith("x)")  # ratio to the floor
    assert "- goal 0 rows lost: 0 lost, met" in lines
    assert any(line.startswith("- never pay twice: `extract run` again") for line in lines)
    assert "### start-up: each client on 0 rows" in lines
