"""Exactly-once, resumable, incremental runs: the real `extract` command against the test server."""

from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_run import EXTRACT, KEY, extract, read_rows, setup

from extract.providers.testserver import ServerThread

#: subprocess runs of the real command: the slow tier (pytest -m "not slow" skips them)
pytestmark = pytest.mark.slow

FIELDS = "id, priority, channel, customer, opened, amount, tags, urgent, score, count"


def table(db: Path, columns: str = "*", name: str = "tickets") -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"select {columns} from {name} order by id").fetchall()
    finally:
        con.close()


def runs(db: Path) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute("select * from _extract_runs order by started_at")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def rewrite_csv(tmp_path: Path, rows: dict[int, str]) -> None:
    lines = ["id,text"] + [f'{k},"{v}"' for k, v in sorted(rows.items())]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")


def original(n: int) -> dict[int, str]:
    return {i: f"Customer {i} writes, about order {i * 7}" for i in range(1, n + 1)}


def test_rerun_sends_nothing_and_keeps_the_table_identical(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=30)
    db = tmp_path / "out/r.duckdb"
    assert extract("run", str(p)).returncode == 0
    before = table(db)
    server.reset()
    r = extract("run", str(p))
    assert r.returncode == 0, r.stderr
    assert server.stats()["total_requests"] == 0
    assert table(db) == before  # every column, provenance included
    last = runs(db)[-1]
    assert (last["status"], last["rows_skipped"], last["rows_ok"], last["requests"]) == (
        "completed",
        30,
        0,
        0,
    )


def test_incremental_requests_exactly_the_rows_that_changed(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=20)
    db = tmp_path / "out/r.duckdb"
    assert extract("run", str(p)).returncode == 0
    first_run = runs(db)[0]["run_id"]

    rows = original(20)
    rows.update({3: "Changed text 3", 11: "Changed text 11", 21: "New row 21", 22: "New row 22"})
    rewrite_csv(tmp_path, rows)
    server.reset()
    assert extract("run", str(p)).returncode == 0
    assert server.stats()["total_requests"] == 4
    second_run = runs(db)[-1]["run_id"]
    by_run = dict(table(db, "id, _run_id"))
    assert sorted(k for k, v in by_run.items() if v == second_run) == [3, 11, 21, 22]
    assert sorted(k for k, v in by_run.items() if v == first_run) == sorted(
        set(range(1, 21)) - {3, 11}
    )

    # a changed prompt affects every row
    server.reset()
    text = p.read_text()
    p.write_text(text.replace("Extract the ticket.", "Extract the support ticket."))
    assert extract("run", str(p)).returncode == 0
    assert server.stats()["total_requests"] == 22
    # so does a changed seed
    server.reset()
    assert extract("run", str(p), "--set", "model.seed=8").returncode == 0
    assert server.stats()["total_requests"] == 22
    # back to the first prompt and seed: every answer is in the cache, nothing is requested
    server.reset()
    p.write_text(text)
    r = extract("run", str(p))
    assert r.returncode == 0, r.stderr
    assert server.stats()["total_requests"] == 0
    last = runs(db)[-1]
    assert (last["rows_cached"], last["rows_ok"], last["requests"]) == (22, 0, 0)
    # --full-refresh ignores all of it
    server.reset()
    assert extract("run", str(p), "--full-refresh").returncode == 0
    assert server.stats()["total_requests"] == 22


def test_kill_9_at_random_points_then_resume(tmp_path: Path, server: ServerThread) -> None:
    n, concurrency = 600, 16
    server.configure(latency_ms=60, jitter_ms=20)
    # the reference: an uninterrupted run into its own output
    ref = tmp_path / "ref"
    ref.mkdir()
    p_ref = setup(ref, server, rows=n)
    assert extract("run", str(p_ref), "--set", f"run.concurrency={concurrency}").returncode == 0
    expected = table(ref / "out/r.duckdb", FIELDS + ", _prompt_hash, _request_hash")

    work = tmp_path / "work"
    work.mkdir()
    p = setup(work, server, rows=n)
    server.reset()
    rng = random.Random(1234)
    env = {"TEST_EXTRACT_KEY": KEY, "PATH": str(Path(EXTRACT).parent)}
    kills = 0
    for _ in range(3):
        proc = subprocess.Popen(
            [EXTRACT, "run", str(p), "--set", f"run.concurrency={concurrency}", "-q"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.9, 1.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills >= 2, "the runs finished before they could be killed; raise n"
    r = extract("run", str(p), "--set", f"run.concurrency={concurrency}")
    assert r.returncode == 0, r.stderr
    db = work / "out/r.duckdb"
    assert table(db, FIELDS + ", _prompt_hash, _request_hash") == expected
    requested = server.stats()["requests_by_row"]
    # never more than one request per row, plus at most what was in flight at each kill
    assert len(requested) == n
    assert sum(requested.values()) <= n + kills * concurrency
    statuses = [r["status"] for r in runs(db)]
    # a kill before the run opened its output leaves no run row
    assert 1 <= statuses.count("killed") <= kills and statuses[-1] == "completed"
    assert list((work / "out").glob("r.duckdb.journal*")) == []


def test_second_run_on_the_same_output_fails_at_once(tmp_path: Path, server: ServerThread) -> None:
    server.configure(latency_ms=300)
    p = setup(tmp_path, server, rows=40)
    env = {"TEST_EXTRACT_KEY": KEY}
    first = subprocess.Popen(
        [EXTRACT, "run", str(p), "-q", "--set", "run.concurrency=2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1.5)
        started = time.monotonic()
        r = extract("run", str(p))
        assert time.monotonic() - started < 10
        assert r.returncode == 2
        assert "another extract run is writing this output" in r.stderr
        assert [line for line in r.stderr.splitlines() if line.startswith("extract:")] == [
            r.stderr.strip().splitlines()[-1]
        ]
    finally:
        first.send_signal(signal.SIGINT)
        assert first.wait(timeout=30) == 130
    # the interrupted run kept what it had written, and the rerun finishes the job
    server.configure(latency_ms=0)
    assert extract("run", str(p)).returncode == 0
    assert [row[0] for row in table(tmp_path / "out/r.duckdb", "id")] == list(range(1, 41))
    assert [r["status"] for r in runs(tmp_path / "out/r.duckdb")] == ["interrupted", "completed"]


def test_budget_stops_the_run_at_or_under_it(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=200)
    budget = 0.004
    # the test server bills like qwen3.5-27b: $0.195 / $1.56 per million tokens in / out
    r = extract("run", str(p), "--set", f"run.budget_usd={budget}", "--set", "model.max_tokens=300")
    assert r.returncode == 5, r.stderr
    assert "stopped before passing the budget of $0.004" in r.stderr
    db = tmp_path / "out/r.duckdb"
    spent = server.stats()["usage"]["cost"]
    last = runs(db)[-1]
    assert last["status"] == "stopped"
    assert 0 < spent <= budget
    assert abs(last["cost_usd"] - spent) < 1e-9
    done = len(table(db, "id"))
    assert 0 < done < 200
    # the rows it did not reach are done by the next run
    assert extract("run", str(p)).returncode == 0
    assert len(table(db, "id")) == 200


def test_failed_rows_are_skipped_until_retry_errors(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=10)
    db = tmp_path / "out/r.duckdb"
    rewrite_csv(tmp_path, original(10))
    server.configure(faults={"forbidden": 0.5})
    assert extract("run", str(p)).returncode == 3
    failed = sorted(row["id"] for row in read_rows(db, "tickets_errors"))
    assert 0 < len(failed) < 10
    server.configure(faults={})
    server.reset()
    r = extract("run", str(p))
    assert r.returncode == 3  # the errors table still holds rows of this input
    assert server.stats()["total_requests"] == 0
    r = extract("errors", str(p), "--format", "json")
    assert r.returncode == 0
    shown = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(s["id"] for s in shown) == failed
    assert {s["_error_class"] for s in shown} == {"RowRejected"}
    r = extract("run", str(p), "--retry-errors")
    assert r.returncode == 0, r.stderr
    assert server.stats()["total_requests"] == len(failed)
    assert read_rows(db, "tickets_errors") == []
    assert len(table(db, "id")) == 10


def test_plan_counts_and_estimates(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=12)
    r = extract("plan", str(p))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1] == (
        "rows: 12 in all: 0 done, 0 failed before (use --retry-errors), "
        "0 from the cache, 12 to request, 0 unreadable"
    )
    assert "estimated from the schema" in lines[2]
    cost = re.fullmatch(
        r"estimated cost: sync \$([0-9.]+) <- run.mode, batch \$([0-9.]+) in 1 batch\(es\) "
        r"for one attempt a row \(re-asks add to it\)",
        lines[3],
    )
    assert cost is not None, lines[3]
    assert float(cost[2]) == pytest.approx(float(cost[1]) / 2, abs=1e-4)
    assert server.stats()["total_requests"] == 0
    assert not (tmp_path / "out/r.duckdb").exists()
    assert extract("run", str(p), "--limit", "5").returncode == 0
    r = extract("plan", str(p))
    assert r.stdout.splitlines()[1].startswith("rows: 12 in all: 5 done, 0 failed before")
    assert "mean of 5 earlier outputs" in r.stdout
    r = extract("runs", str(p), "--format", "json")
    assert [json.loads(line)["rows_ok"] for line in r.stdout.splitlines()] == [5]


def test_schema_change_archives_the_old_table(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=4)
    db = tmp_path / "out/r.duckdb"
    assert extract("run", str(p)).returncode == 0
    schema = tmp_path / "ticket.py"
    schema.write_text(schema.read_text() + "    note: str | None\n")
    server.reset()
    assert extract("run", str(p)).returncode == 0
    assert server.stats()["total_requests"] == 4
    con = duckdb.connect(str(db), read_only=True)
    names = [
        n for (n,) in con.execute("select table_name from information_schema.tables").fetchall()
    ]
    columns = [c for (c,) in con.execute("select column_name from (describe tickets)").fetchall()]
    con.close()
    # the results table changed columns; the errors table did not
    assert [n.startswith("tickets__before_") for n in names].count(True) == 1
    assert "note" in columns


def test_journal_replay_is_idempotent(tmp_path: Path) -> None:
    """A kill between a batch's commit and the journal's truncation replays committed rows:
    they must replace themselves, not duplicate."""
    from pydantic import BaseModel

    from extract.ledger import Ledger
    from extract.ledger.journal import Journal
    from extract.results import RowResult
    from extract.schema import compile_schema
    from extract.schema.columns import model_columns

    class Thing(BaseModel):
        name: str

    compiled = compile_schema(Thing)

    def open_ledger() -> Ledger:
        return Ledger(
            tmp_path / "l.duckdb",
            "things",
            key="id",
            key_type="BIGINT",
            columns=model_columns(Thing),
            compiled=compiled,
            seed=1,
        )

    results = [
        RowResult(
            key=i,
            prompt_hash="p",
            request_hash=f"h{i}",
            instance=Thing(name=f"n{i}"),
            replaces=False,
            run_id="r1",
        )
        for i in range(3)
    ]
    ledger = open_ledger()
    ledger.commit(results)
    ledger.close()
    journal = Journal(tmp_path / "l.duckdb")
    for r in results:  # as if the process died right after the commit
        journal.append(r)
    journal.sync()
    segment = journal.rotate()
    assert segment is not None
    with segment.open("a") as f:
        f.write('{"key": 9, "cut short')  # a line the kill interrupted
    journal.close()
    ledger = open_ledger()
    ledger.close()
    assert table(tmp_path / "l.duckdb", "id, name", "things") == [(0, "n0"), (1, "n1"), (2, "n2")]
    assert list(tmp_path.glob("l.duckdb.journal*")) == []
