"""`model.stream: true` against the test server's server-sent events: the same table as whole
replies, a stall caught by the idle timeout, a runaway answer cut short and re-asked, an error
event inside a 200."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest
from test_run import KEY, setup

from extract.api import run_pipeline
from extract.providers.testserver import ServerThread
from extract.transport.stream import is_runaway

#: differ between any two runs
VOLATILE = ("_latency_ms", "_extracted_at", "_run_id", "_generation_id")


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EXTRACT_KEY", KEY)


def rows(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cols = [
            c for (c,) in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'tickets' "
                "ORDER BY ordinal_position"
            ).fetchall() if c not in VOLATILE
        ]  # fmt: skip
        return con.execute(f"SELECT {', '.join(cols)} FROM tickets ORDER BY id").fetchall()
    finally:
        con.close()


def test_streamed_answers_write_the_same_table(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=20)
    whole = run_pipeline(p, {"output.path": str(tmp_path / "w.duckdb")})
    streamed = run_pipeline(
        p, {"output.path": str(tmp_path / "s.duckdb"), "model.stream": True}
    )
    assert whole.rows_ok == streamed.rows_ok == 20
    assert rows(tmp_path / "s.duckdb") == rows(tmp_path / "w.duckdb")
    assert streamed.usage.cost_usd == pytest.approx(whole.usage.cost_usd)


def test_a_stalled_stream_is_retried_after_the_idle_timeout(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=4)
    server.configure(stream_stall_ms=1_500)
    s = run_pipeline(
        p, {"model.stream": True, "model.idle_timeout_s": 0.3, "run.backoff_s": 0.01}
    )
    assert (s.rows_ok, s.requests) == (4, 8)  # each row: a stalled stream, then a whole one
    # the client hung up on each stalled stream (the server finds out when it wakes up)
    deadline = time.monotonic() + 10
    while server.stats()["streams_cut"] < 4:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert server.stats()["streams_cut"] == 4


def test_a_runaway_answer_is_cut_short_and_reasked(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=6)
    server.configure(faults={"runaway": 0.5})
    s = run_pipeline(p, {"model.stream": True, "model.max_tokens": 4000})
    assert s.rows_ok == 6
    stats = server.stats()
    assert stats["faults"]["runaway"] > 0
    assert stats["streams_cut"] == stats["faults"]["runaway"]
    # what was read of them is far below the 4,000 tokens they would have run on for
    assert s.usage.completion_tokens < 6 * 200


def test_an_error_event_inside_a_200_is_retried(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=5)
    server.configure(faults={"upstream_error": 0.5})
    s = run_pipeline(p, {"model.stream": True, "run.backoff_s": 0.01})
    assert s.rows_ok == 5 and s.requests > 5


def test_runaway_detection() -> None:
    assert is_runaway('{"note": "' + "and again " * 20)
    assert is_runaway("x" * 200)
    assert not is_runaway('{"note": "' + "and again " * 5)
    varied = " ".join(f"word{i}" for i in range(60))
    assert not is_runaway(varied)
