"""Provider limits slow a run down, never fail rows: a hidden cap on concurrent requests, and
429s beyond `run.max_retries` (test server on 127.0.0.1, through the one run path)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_run import KEY, setup

from extract.api import run_pipeline
from extract.providers.testserver import ServerThread


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_EXTRACT_KEY", KEY)


def test_a_capped_provider_gets_about_one_request_per_row(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=300)
    server.configure(latency_ms=30, max_concurrency=6)
    s = run_pipeline(p, {"run.concurrency": 48, "run.max_retries": 2})
    stats = server.stats()
    assert (s.rows_ok, s.rows_failed) == (300, 0)
    assert stats["peak_in_flight"] == 6 and stats["capped"] > 0
    assert stats["total_requests"] / 300 < 1.15


def test_429s_do_not_use_up_the_retries(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=30)
    server.configure(faults={"rate_limit": 0.7})
    s = run_pipeline(p, {"run.max_retries": 1, "run.backoff_s": 0.001})
    assert (s.rows_ok, s.rows_failed) == (30, 0)
    assert server.stats()["faults"]["rate_limit"] > 30
    # other transient failures still do
    server.reset()
    server.configure(faults={"server_error": 1.0})
    s = run_pipeline(p, {"run.max_retries": 1, "run.backoff_s": 0.001, "run.max_attempts": 1,
                         "output.path": str(tmp_path / "other.duckdb")})  # fmt: skip
    assert s.rows_failed == 30 and server.stats()["total_requests"] == 60
