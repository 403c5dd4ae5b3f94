"""run.mode batch against the test server's Batch API over real HTTP: the same table as a sync
run, half the cost, rows left pending and collected later, re-asks in follow-up batches, expired
batches submitted again, a lost submit answer found instead of paid twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
from test_run import EXTRACT, KEY, setup

from extract.api import batches_table, run_pipeline
from extract.batch.lines import create_body, has_inline_data
from extract.providers.testserver import ServerThread

#: provenance that differs between modes by nature (and the generation id, between any two runs)
MODE_SPECIFIC = (
    "_cost_usd", "_latency_ms", "_batch_id", "_extracted_at", "_run_id", "_generation_id",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EXTRACT_KEY", KEY)


def batch_mode(server: ServerThread, tmp_path: Path, **more: Any) -> dict[str, Any]:
    return {
        "run.mode": "batch",
        "model.batch_url": server.base_url + "/batches",
        "run.batch_poll_s": 0.05,
        "output.path": str(tmp_path / "out/b.duckdb"),
        **more,
    }


def table(db: Path, name: str = "tickets", drop: tuple[str, ...] = MODE_SPECIFIC) -> list[Any]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [
            c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                "ORDER BY ordinal_position", [name]
            ).fetchall() if c not in drop
        ]  # fmt: skip
        return con.execute(f"SELECT {', '.join(cols)} FROM {name} ORDER BY id").fetchall()
    finally:
        con.close()


def batch_stats(server: ServerThread) -> dict[str, Any]:
    stats: dict[str, Any] = server.stats()["batches"]
    return stats


def test_batch_run_writes_the_sync_table_at_half_the_cost(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=25)
    server.configure(batch_step_s=0.02)
    sync = run_pipeline(p, {"output.path": str(tmp_path / "out/s.duckdb")})
    assert sync.rows_ok == 25
    batch = run_pipeline(p, batch_mode(server, tmp_path), wait=True)
    assert (batch.status, batch.rows_ok, batch.rows_pending, batch.requests) == (
        "completed", 25, 0, 25,
    )  # fmt: skip
    assert table(tmp_path / "out/b.duckdb") == table(tmp_path / "out/s.duckdb")
    stats = batch_stats(server)
    assert (stats["created"], stats["lines_submitted"], stats["max_submissions_per_body"]) == (
        1, 25, 1,
    )  # fmt: skip
    # every row's cost is half its sync cost, and the run's total is the batch's own figure
    con_b = duckdb.connect(str(tmp_path / "out/b.duckdb"), read_only=True)
    con_s = duckdb.connect(str(tmp_path / "out/s.duckdb"), read_only=True)
    b = dict(con_b.execute("SELECT id, _cost_usd FROM tickets").fetchall())
    s = dict(con_s.execute("SELECT id, _cost_usd FROM tickets").fetchall())
    ids = {r[0] for r in con_b.execute("SELECT DISTINCT _batch_id FROM tickets").fetchall()}
    con_b.close()
    con_s.close()
    assert all(b[k] == pytest.approx(s[k] / 2) for k in s)
    assert batch.usage.cost_usd == pytest.approx(stats["usage"]["cost"])
    assert batch.usage.cost_usd == pytest.approx(sync.usage.cost_usd / 2)
    [listed] = batches_table(p, (f"output.path={tmp_path / 'out/b.duckdb'}",))
    assert ids == {listed["batch_id"]}
    assert (listed["status"], listed["requests"], listed["completed"], listed["collected"]) == (
        "completed", 25, 25, True,
    )  # fmt: skip
    assert listed["cost_usd"] == pytest.approx(stats["usage"]["cost"], abs=1e-6)


def test_a_run_leaves_running_batches_to_the_next_one(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=12)
    # the batch completes 3 s after it is created: the second run must look before that,
    # on a loaded machine too
    server.configure(batch_step_s=1.0)
    first = run_pipeline(p, batch_mode(server, tmp_path))
    assert (first.status, first.rows_ok, first.rows_pending) == ("pending", 0, 12)
    assert table(tmp_path / "out/b.duckdb") == []
    again = run_pipeline(p, batch_mode(server, tmp_path))  # still running: nothing new is submitted
    assert again.rows_pending == 12 and batch_stats(server)["created"] == 1
    deadline = time.monotonic() + 10
    while batch_stats(server)["by_status"] != {"completed": 1}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    done = run_pipeline(p, batch_mode(server, tmp_path))
    assert (done.status, done.rows_ok, done.rows_pending) == ("completed", 12, 0)
    assert batch_stats(server)["created"] == 1
    assert len(table(tmp_path / "out/b.duckdb")) == 12
    later = run_pipeline(p, batch_mode(server, tmp_path))
    assert (later.rows_skipped, later.requests) == (12, 0)


def test_reasks_go_in_a_follow_up_batch_or_sync(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=30)
    server.configure(batch_step_s=0, faults={"invalid": 0.3, "malformed": 0.1})
    s = run_pipeline(p, batch_mode(server, tmp_path), wait=True)
    assert s.rows_ok + s.rows_failed == 30 and s.rows_ok >= 25
    stats = batch_stats(server)
    # every request of the run is one line (a re-ask that repeats an earlier body is a new line)
    assert stats["created"] >= 2 and stats["lines_submitted"] == s.requests > 30
    assert stats["custom_ids_submitted_more_than_once"] == 0
    assert server.stats()["total_requests"] == 0  # no sync request
    server.reset()
    s = run_pipeline(
        p,
        batch_mode(
            server,
            tmp_path,
            **{"output.path": str(tmp_path / "c.duckdb"), "run.batch_reask": "sync"},
        ),
        wait=True,
    )
    assert s.rows_ok + s.rows_failed == 30
    assert batch_stats(server)["created"] == 1
    assert server.stats()["total_requests"] == s.requests - 30 > 0


def test_an_expired_batch_is_submitted_again(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=8)
    server.configure(batch_step_s=0.2, batch_outcome="expired")
    assert run_pipeline(p, batch_mode(server, tmp_path)).rows_pending == 8
    server.configure(batch_outcome="completed")
    deadline = time.monotonic() + 10
    while batch_stats(server)["by_status"] != {"expired": 1}:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    s = run_pipeline(p, batch_mode(server, tmp_path), wait=True)
    assert (s.rows_ok, s.rows_pending) == (8, 0)
    stats = batch_stats(server)
    assert stats["by_status"] == {"expired": 1, "completed": 1}
    assert stats["bodies_submitted_more_than_once"] == 0
    statuses = [
        b["status"] for b in batches_table(p, (f"output.path={tmp_path / 'out/b.duckdb'}",))
    ]
    assert statuses == ["completed", "expired"]


def test_a_lost_submit_answer_is_found_not_paid_twice(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=6)
    server.configure(batch_step_s=0, batch_create_drop=True)
    s = run_pipeline(p, batch_mode(server, tmp_path, **{"run.max_retries": 1}), wait=True)
    assert (s.rows_ok, s.rows_pending) == (6, 0)
    assert batch_stats(server)["created"] == 1


def test_the_create_body_puts_endpoint_and_model_first() -> None:
    body = create_body("m/x", [("a-0", b'{"model":"m/x","messages":[]}')])
    assert body == (
        b'{"endpoint":"/v1/chat/completions","model":"m/x","completion_window":"24h",'
        b'"requests":[{"custom_id":"a-0","body":{"model":"m/x","messages":[]}}]}'
    )
    assert has_inline_data(b'{"image_url":{"url":"data:image/png;base64,AAA"}}')
    assert not has_inline_data(b'{"image_url":{"url":"https://x/y.png"}}')


def test_a_failed_batch_is_submitted_again_then_its_rows_give_up(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=5)
    server.configure(batch_step_s=0, batch_outcome="failed")
    s = run_pipeline(p, batch_mode(server, tmp_path, **{"run.max_retries": 0}), wait=True)
    assert (s.rows_ok, s.rows_failed, s.rows_pending) == (0, 5, 0)
    assert batch_stats(server)["created"] == 3  # the first and two more, then the rows give up
    con = duckdb.connect(str(tmp_path / "out/b.duckdb"), read_only=True)
    errors = con.execute("SELECT _error_class, _message FROM tickets_errors").fetchall()
    lines = con.execute(
        "SELECT row_key, request_hash, custom_id FROM _extract_batch_lines ORDER BY 1"
    ).fetchall()
    hashes = dict(con.execute("SELECT id::VARCHAR, _request_hash FROM tickets_errors").fetchall())
    con.close()
    assert {c for c, _ in errors} == {"ServerError"}
    assert all("without answering it 3 times (the last: batch batch_" in m for _, m in errors)
    # each line names its row and the row's request hash
    assert sorted({k for k, _, _ in lines}) == sorted(hashes) and len(lines) == 15
    assert all(h == hashes[k] and c.endswith(h[:24]) for k, h, c in lines)


def test_the_older_api_without_a_results_endpoint(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=6)
    server.configure(batch_step_s=0)
    beta = server.base_url.removesuffix("/v1") + "/beta/batches"
    s = run_pipeline(p, batch_mode(server, tmp_path, **{"model.batch_url": beta}), wait=True)
    assert (s.rows_ok, s.rows_pending) == (6, 0)
    assert batch_stats(server)["created"] == 1


def test_a_local_image_is_the_rows_error_or_goes_sync(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=3)
    # a 1x1 PNG next to the rows, named by a column the prompt sends as an image
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
    )
    (tmp_path / "dot.png").write_bytes(png)
    rows = (tmp_path / "in.csv").read_text().splitlines()
    (tmp_path / "in.csv").write_text(
        "\n".join([rows[0] + ",photo"] + [r + ",dot.png" for r in rows[1:]]) + "\n"
    )
    server.configure(batch_step_s=0)
    with_image = {"prompt.images": ["photo"]}
    s = run_pipeline(p, batch_mode(server, tmp_path, **with_image), wait=True)
    assert (s.rows_ok, s.rows_failed) == (0, 3)
    con = duckdb.connect(str(tmp_path / "out/b.duckdb"), read_only=True)
    [(message,)] = con.execute("SELECT DISTINCT _message FROM tickets_errors").fetchall()
    con.close()
    assert "batches take them by http(s) URL only" in message
    s = run_pipeline(
        p,
        batch_mode(
            server, tmp_path, **with_image, **{"run.batch_fallback": "sync",
                                                "output.path": str(tmp_path / "f.duckdb")}
        ),
        wait=True,
    )  # fmt: skip
    assert s.rows_ok == 3 and server.stats()["total_requests"] == 3
    assert batch_stats(server)["created"] == 0


def test_batch_mode_needs_a_batch_api(tmp_path: Path, server: ServerThread) -> None:
    from extract.errors import ConfigError

    p = setup(tmp_path, server, rows=2)
    with pytest.raises(ConfigError, match=r"run.mode: batch: provider 'openai' has no Batch API"):
        run_pipeline(p, {"run.mode": "batch"})
    assert os.environ["TEST_EXTRACT_KEY"] == KEY


# --------------------------------------------------------------------------------------------
# the real command


def extract_cmd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TEST_EXTRACT_KEY": KEY}
    return subprocess.run(
        [EXTRACT, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def sets(server: ServerThread, **more: Any) -> list[str]:
    values = {
        "run.mode": "batch",
        "model.batch_url": server.base_url + "/batches",
        "run.batch_poll_s": 0.05,
        **more,
    }
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


@pytest.mark.slow
def test_cron_runs_exit_7_until_collected(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=10)
    server.configure(batch_step_s=0.4)
    r = extract_cmd("run", str(p), *sets(server), cwd=tmp_path)
    assert r.returncode == 7, r.stderr
    [end] = [json.loads(x) for x in r.stderr.splitlines() if '"run_end"' in x]
    assert (end["status"], end["rows_pending"], end["rows_ok"]) == ("pending", 10, 0)
    r = extract_cmd("batches", str(p), "--format", "json", cwd=tmp_path)
    [listed] = [json.loads(x) for x in r.stdout.splitlines()]
    assert listed["status"] in ("validating", "in_progress") and listed["requests"] == 10
    r = extract_cmd("run", str(p), *sets(server), "--wait", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert batch_stats(server)["created"] == 1
    r = extract_cmd("batches", str(p), cwd=tmp_path)
    assert r.returncode == 0 and "completed" in r.stdout


@pytest.mark.slow
def test_kill_9_across_the_phases_then_the_same_table(tmp_path: Path, server: ServerThread) -> None:
    n = 240
    ref = tmp_path / "ref"
    ref.mkdir()
    p_ref = setup(ref, server, rows=n)
    assert extract_cmd("run", str(p_ref), cwd=ref).returncode == 0
    expected = table(ref / "out/r.duckdb")

    work = tmp_path / "work"
    work.mkdir()
    p = setup(work, server, rows=n)
    server.reset()
    # three batches a run; a slow submit answer and statuses that take their time, so that a
    # kill lands before, during and after the POST, while polling and while collecting
    server.configure(batch_step_s=0.8, batch_create_latency_ms=400)
    args = sets(server, **{"run.batch_max_requests": 80})
    rng = random.Random(11)
    seen = []
    for low, high in ((0.5, 0.9), (0.9, 1.3), (1.3, 1.8), (1.8, 2.4), (2.4, 3.2)):
        proc = subprocess.Popen(
            [EXTRACT, "run", str(p), *args, "--wait", "-q"],
            env={**os.environ, "TEST_EXTRACT_KEY": KEY},
            cwd=work,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(low, high))
        killed = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        seen.append((killed, batch_stats(server)["created"]))
    assert sum(k for k, _ in seen) >= 3, seen
    assert seen[0][1] < seen[-1][1], seen  # some kills came before a batch was submitted
    r = extract_cmd("run", str(p), *args, "--wait", cwd=work)
    assert r.returncode == 0, r.stderr
    assert table(work / "out/r.duckdb") == expected
    stats = batch_stats(server)
    assert stats["bodies_submitted_more_than_once"] == 0, (seen, stats)
    assert stats["custom_ids_submitted_more_than_once"] == 0
    # lines in batches that ended unanswered aside, every row was submitted exactly once
    assert stats["lines_submitted"] >= n
