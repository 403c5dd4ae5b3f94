"""End to end: the real `extract` command against the project's test server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from extract.config import load_pipeline
from extract.pipeline import prepare
from extract.providers.testserver import ServerThread
from extract.providers.testserver.fakegen import expected_answer

#: subprocess runs of the real command: the slow tier (pytest -m "not slow" skips them)
pytestmark = pytest.mark.slow

EXTRACT = str(Path(sys.executable).parent / "extract")
KEY = "sk-test-secret"

SCHEMA = '''
import datetime, decimal, enum
from typing import Annotated, Literal
from pydantic import BaseModel, Field

class Priority(enum.Enum):
    low = "low"
    high = "high"

class Customer(BaseModel):
    """The person who wrote the ticket."""
    name: str
    email: str | None

class Ticket(BaseModel):
    """Fields of a support ticket."""
    priority: Priority
    channel: Literal["email", "phone"]
    customer: Customer
    opened: datetime.date
    amount: Annotated[decimal.Decimal, Field(max_digits=8, decimal_places=2)] | None
    tags: list[str] = Field(max_length=3)
    urgent: bool
    score: float
    count: int
'''

PIPELINE = """\
name: t
source: {type: csv, path: in.csv, key: id}
schema: ticket.py:Ticket
prompt:
  system: Extract the ticket.
  user: "Ticket {id}: {text}"
model:
  base_url: BASE_URL
  api_key_env: TEST_EXTRACT_KEY
  seed: 7
run: {concurrency: 8, max_attempts: 4, max_retries: 6, batch_size: 7, backoff_s: 0.05}
output: {type: duckdb, path: out/r.duckdb, table: tickets}
"""


def setup(tmp_path: Path, server: ServerThread, rows: int = 40) -> Path:
    (tmp_path / "ticket.py").write_text(SCHEMA)
    lines = ["id,text"] + [
        f'{i},"Customer {i} writes, about order {i * 7}"' for i in range(1, rows + 1)
    ]
    (tmp_path / "in.csv").write_text("\n".join(lines) + "\n")
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE.replace("BASE_URL", server.base_url))
    return p


def extract(
    *args: str, key: str | None = KEY, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k != "TEST_EXTRACT_KEY"}
    if key is not None:
        environ["TEST_EXTRACT_KEY"] = key
    environ.update(env or {})
    return subprocess.run(
        [EXTRACT, *args], capture_output=True, text=True, env=environ, cwd=cwd, timeout=120
    )


def expected_rows(pipeline_file: Path) -> dict[int, dict[str, Any]]:
    """What the test server answers for each row, computed from the requests the pipeline sends."""
    pipeline = prepare(load_pipeline(pipeline_file))
    out = {}
    try:
        for batch in pipeline.source.batches(100):
            for row in batch.to_pylist():
                body = {
                    "messages": pipeline.prompt.messages(row, row["id"]),
                    "seed": 7,
                    "response_format": pipeline.compiled.response_format,
                }
                instance = pipeline.compiled.parse(expected_answer(body))
                out[row["id"]] = instance.model_dump(mode="json")
    finally:
        pipeline.close()
    return out


def read_rows(db: Path, table: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"select * from {table} order by 1")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def as_json(row: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return json.loads(json.dumps({f: row[f] for f in fields}, default=str))


def test_run_writes_typed_table_with_exact_answers(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server)
    r = extract("run", str(p))
    assert r.returncode == 0, r.stderr
    db = tmp_path / "out/r.duckdb"
    con = duckdb.connect(str(db), read_only=True)
    types = dict(
        con.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_name = 'tickets' order by ordinal_position"
        ).fetchall()
    )
    runs = con.execute(
        "select status, rows_total, rows_ok, rows_failed, requests from _extract_runs"
    ).fetchall()
    con.close()
    assert types["id"] == "BIGINT"
    assert types["priority"] == "ENUM('low', 'high')"
    assert types["channel"] == "ENUM('email', 'phone')"
    assert types["customer"] == 'STRUCT("name" VARCHAR, email VARCHAR)'
    assert types["opened"] == "DATE"
    assert types["amount"] == "DECIMAL(8,2)"
    assert types["tags"] == "VARCHAR[]"
    assert (types["urgent"], types["score"], types["count"]) == ("BOOLEAN", "DOUBLE", "BIGINT")
    assert types["_cost_usd"] == "DOUBLE" and types["_run_id"] == "VARCHAR"
    assert runs == [("completed", 40, 40, 0, 40)]

    expected = expected_rows(p)
    rows = read_rows(db, "tickets")
    fields = [
        "priority",
        "channel",
        "customer",
        "opened",
        "amount",
        "tags",
        "urgent",
        "score",
        "count",
    ]
    assert [r["id"] for r in rows] == list(range(1, 41))
    for row in rows:
        got = as_json(row, fields)
        want = dict(expected[row["id"]])
        if want["amount"] is not None:
            assert Decimal(got.pop("amount")) == Decimal(want.pop("amount"))
        assert got == want, row["id"]
        assert row["_status"] == "ok" and row["_attempts"] == 1 and row["_requests"] == 1
        assert row["_provider"] == "fake" and row["_seed"] == 7 and row["_prompt_tokens"] > 0
    assert read_rows(db, "tickets_errors") == []
    # the API key reaches neither the output file nor the logs
    assert KEY.encode() not in db.read_bytes()
    assert KEY not in r.stdout + r.stderr
    # every row was requested exactly once
    assert sorted(server.stats()["requests_by_row"].values()) == [1] * 40


def test_fault_mix_loses_nothing_and_attaches_right_answers(
    tmp_path: Path, server: ServerThread
) -> None:
    p = setup(tmp_path, server, rows=120)
    server.configure(
        faults={
            "rate_limit": 0.1,
            "server_error": 0.05,
            "timeout": 0.03,
            "drop": 0.03,
            "upstream_error": 0.03,
            "malformed": 0.08,
            "fenced": 0.05,
            "prose": 0.05,
            "invalid": 0.08,
            "length": 0.04,
            "reasoning_only": 0.03,
            "refusal": 0.02,
        }
    )
    r = extract("run", str(p), "--set", "run.concurrency=16")
    assert r.returncode in (0, 3), r.stderr
    db = tmp_path / "out/r.duckdb"
    ok = read_rows(db, "tickets")
    failed = read_rows(db, "tickets_errors")
    keys = [row["id"] for row in ok] + [row["id"] for row in failed]
    assert sorted(keys) == list(range(1, 121))  # nothing lost, nothing twice
    assert r.returncode == (3 if failed else 0)
    expected = expected_rows(p)
    fields = ["priority", "customer", "opened", "tags", "count"]
    for row in ok:
        assert as_json(row, fields) == {f: expected[row["id"]][f] for f in fields}
    assert any(row["_attempts"] > 1 for row in ok)  # re-asks happened and succeeded
    assert any(row["_requests"] > row["_attempts"] for row in ok)  # transport retries too
    for row in failed:
        assert row["_error_class"] in {
            "Refusal",
            "MalformedOutput",
            "InvalidOutput",
            "TruncatedOutput",
        }
        assert row["_message"]
    for row in failed:
        if row["_error_class"] == "Refusal":  # recorded with what the model said, not re-asked
            assert row["_raw_output"] and row["_message"].startswith("the model refused: ")
    stats = server.stats()
    assert stats["total_requests"] == sum(row["_requests"] for row in ok + failed)


def test_rejected_rows_go_to_errors_table(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=5)
    server.configure(faults={"bad_request": 1.0})
    r = extract("run", str(p))
    assert r.returncode == 3, r.stderr
    failed = read_rows(tmp_path / "out/r.duckdb", "tickets_errors")
    assert [(row["id"], row["_error_class"], row["_requests"]) for row in failed] == [
        (i, "RowRejected", 1) for i in range(1, 6)
    ]
    assert failed[0]["_message"].startswith("HTTP 400: ")


def test_401_stops_cleanly_and_keeps_rows(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=30)
    assert extract("run", str(p), "--limit", "10").returncode == 0
    r = extract("run", str(p), key="sk-wrong")
    assert r.returncode == 4
    assert (
        r.stderr.strip()
        .splitlines()[-1]
        .startswith("extract: error: the API stopped the run: HTTP 401")
    )
    assert "sk-wrong" not in r.stderr + r.stdout
    db = tmp_path / "out/r.duckdb"
    assert [row["id"] for row in read_rows(db, "tickets")] == list(range(1, 11))
    con = duckdb.connect(str(db), read_only=True)
    statuses = con.execute(
        "select status, rows_ok from _extract_runs order by started_at"
    ).fetchall()
    con.close()
    assert statuses == [("completed", 10), ("stopped", 0)]


def test_rerun_replaces_rows_instead_of_duplicating(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=12)
    assert extract("run", str(p)).returncode == 0
    assert extract("run", str(p)).returncode == 0
    assert [row["id"] for row in read_rows(tmp_path / "out/r.duckdb", "tickets")] == list(
        range(1, 13)
    )


@pytest.mark.parametrize("kind", ["parquet", "csv"])
def test_file_outputs(tmp_path: Path, server: ServerThread, kind: str) -> None:
    p = setup(tmp_path, server, rows=9)
    r = extract(
        "run", str(p), "--set", f"output.type={kind}", "--set", f"output.path=out/r.{kind}",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stderr
    out = tmp_path / f"out/r.{kind}"
    frame = pl.read_parquet(out) if kind == "parquet" else pl.read_csv(out)
    assert frame["id"].to_list() == list(range(1, 10))
    expected = expected_rows(p)
    first = frame.row(0, named=True)
    customer = first["customer"] if kind == "parquet" else json.loads(first["customer"])
    assert customer == expected[1]["customer"]
    errors = tmp_path / f"out/r_errors.{kind}"
    assert errors.exists()
    con = duckdb.connect(str(tmp_path / "out/r.ledger.duckdb"), read_only=True)
    assert con.execute("select rows_ok from _extract_runs").fetchall() == [(9,)]
    con.close()


def test_config_errors_are_one_line_with_exit_2(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=3)
    p.write_text(p.read_text().replace("{text}", "{body}"))
    r = extract("run", str(p))
    assert r.returncode == 2
    assert (
        r.stderr
        == f"extract: error: {p}:prompt.user: unknown column(s) 'body'; the source has: id, text\n"
    )
    assert server.stats()["total_requests"] == 0


def test_missing_api_key_names_the_variable(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=3)
    r = extract("run", str(p), key=None)
    assert r.returncode == 2
    assert "environment variable TEST_EXTRACT_KEY is not set" in r.stderr


def test_broken_csv_and_duplicate_keys(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=3)
    (tmp_path / "in.csv").write_text('id,text\n1,"ok"\n2,"unterminated\n')
    r = extract("run", str(p))
    assert r.returncode == 2 and r.stderr.startswith(
        f"extract: error: {tmp_path / 'in.csv'}: cannot read"
    )
    assert len(r.stderr.strip().splitlines()) == 1
    (tmp_path / "in.csv").write_text("id,text\n1,a\n1,b\n")
    r = extract("run", str(p))
    assert r.returncode == 2 and "duplicate key 'id': 1 (2 times)" in r.stderr


def test_missing_image_is_a_row_error(tmp_path: Path, server: ServerThread) -> None:
    p = setup(tmp_path, server, rows=0)
    (tmp_path / "in.csv").write_text("id,text,photo\n1,a,\n2,b,missing.png\n")
    p.write_text(p.read_text().replace("  user:", "  images: [photo]\n  user:"))
    r = extract("run", str(p))
    assert r.returncode == 3, r.stderr
    failed = read_rows(tmp_path / "out/r.duckdb", "tickets_errors")
    assert [(f["id"], f["_error_class"], f["_requests"]) for f in failed] == [
        (2, "RowInputError", 0)
    ]
    assert [row["id"] for row in read_rows(tmp_path / "out/r.duckdb", "tickets")] == [1]
