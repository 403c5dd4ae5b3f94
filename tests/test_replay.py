"""`extract replay`: a sample asked again bypassing the cache, drift per field, written to a
table; and the reproducibility record every row keeps (generation id, system fingerprint)."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest
from test_run import KEY, extract, setup

from extract.api import replay_pipeline, run_pipeline
from extract.providers.testserver import ServerThread


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EXTRACT_KEY", KEY)


def test_replay_measures_drift_per_field(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=40)
    out = {"output.path": str(tmp_path / "out/r.duckdb")}
    assert run_pipeline(p, out).rows_ok == 40
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    record = con.execute(
        "SELECT count(DISTINCT _generation_id), any_value(_system_fingerprint) FROM tickets"
    ).fetchall()
    con.close()
    assert record == [(40, "fp_extract_test")]
    server.reset()
    same = replay_pipeline(p, tuple(f"{k}={v}" for k, v in out.items()), sample=10, seed=3)
    # the cache is bypassed: every sampled row is requested again, and nothing changed
    assert server.stats()["total_requests"] == 10
    assert (same.rows_sampled, same.rows_replayed, same.rows_failed) == (10, 10, 0)
    assert {r["field"] for r in same.rows()} >= {"priority", "customer.name", "tags"}
    assert all(r["compared"] == 10 and r["changed"] == 0 for r in same.rows())
    server.configure(drift=1.0)
    moved = replay_pipeline(p, tuple(f"{k}={v}" for k, v in out.items()), sample=10, seed=3)
    by_field = {r["field"]: r for r in moved.rows()}
    assert by_field["customer.name"]["share_changed"] == 1.0
    assert 0 < sum(r["changed"] for r in moved.rows()) <= 10 * len(by_field)
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    stored = con.execute(
        "SELECT replay_id, count(*), sum(changed) FROM tickets_replay GROUP BY 1 ORDER BY 3"
    ).fetchall()
    # the output itself is untouched: the replayed answers went to a scratch output
    rows = con.execute("SELECT count(*) FROM tickets").fetchall()
    con.close()
    assert [(n, c) for _, n, c in stored] == [
        (len(same.fields), 0), (len(moved.fields), sum(r["changed"] for r in moved.rows()))
    ]  # fmt: skip
    assert rows == [(40,)]


@pytest.mark.slow
def test_replay_command(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=8)
    assert extract("run", str(p), cwd=tmp_path).returncode == 0
    r = extract("replay", str(p), "--sample", "4", "--format", "json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    fields = [json.loads(line) for line in r.stdout.splitlines()]
    assert fields and all(f["compared"] == 4 and f["share_changed"] == 0 for f in fields)
    r = extract("replay", str(tmp_path / "missing.yaml"), cwd=tmp_path)
    assert r.returncode == 2
