"""run.engine ray (extract/engines/ray/): a local Ray cluster (2 CPUs) and the real test server.

The cluster tests are slow-tier; the one without Ray is fast.

The Ray tests skip when Ray is not installed (`pip install -e '.[ray]'`), except under CI (`CI`
set), where the Makefile installs the extra and a missing Ray is a failure.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from extract.api import run_pipeline
from extract.config import load_pipeline
from extract.errors import EngineUnavailable, SourceError, WorkerLost
from extract.pipeline import prepare
from extract.providers.testserver import ServerThread
from extract.runner import run

#: Ray's own modules warn about Ray's own deprecated settings (filterwarnings = error)
pytestmark = pytest.mark.filterwarnings(r"ignore::DeprecationWarning:ray\..*")

EXTRACT = str(Path(sys.executable).parent / "extract")
KEY = "sk-test-secret"
KEY_ENV = "TEST_EXTRACT_RAY_KEY"

SCHEMA = '''
import datetime
from typing import Literal
from pydantic import BaseModel, Field

class Ticket(BaseModel):
    """Fields of a support ticket."""
    priority: Literal["low", "high"]
    customer: str
    opened: datetime.date
    tags: list[str] = Field(max_length=3)
    urgent: bool
    count: int
'''

PIPELINE = """\
name: t
source: SOURCE
schema: ticket.py:Ticket
prompt:
  system: Extract the ticket.
  user: "Ticket {id} ({code}, sent {sent}, {amount}): {text}"
model:
  base_url: BASE_URL
  api_key_env: TEST_EXTRACT_RAY_KEY
  seed: 7
run: {concurrency: 8, max_attempts: 3, max_retries: 3, batch_size: 7, backoff_s: 0.02}
output: {type: duckdb, path: out/r.duckdb, table: tickets}
"""

SOURCES = {
    "csv": "{type: csv, path: in.csv, key: id}",
    "parquet": "{type: parquet, path: in.parquet, key: id}",
    "duckdb": "{type: duckdb, path: in.duckdb, query: 'select * from tickets where id > 0', "
    "key: id}",
}

#: columns that differ between any two runs: ids, times, the server's generation counter
VOLATILE = ["_run_id", "_extracted_at", "_latency_ms", "_generation_id"]


def _ray_or_skip() -> Any:
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("CI is set but Ray is not installed; pip install -e '.[ray]'")
        pytest.skip("Ray is not installed; pip install -e '.[ray]'")
    return ray


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A local Ray instance of 2 CPUs for the module; its GCS address. Its workers inherit the
    API key's variable from this process's environment, as a cluster's nodes would have it."""
    ray = _ray_or_skip()
    old = os.environ.get(KEY_ENV)
    os.environ[KEY_ENV] = KEY
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop(KEY_ENV, None)
        else:
            os.environ[KEY_ENV] = old


def write_inputs(tmp_path: Path, server: ServerThread, kind: str, rows: int) -> Path:
    """The same rows as a CSV, Parquet or DuckDB source, and a pipeline over them. The columns
    hold what two readers could type apart: a code with leading zeros, a date, a decimal, an
    empty value, and text with commas, quotes and a line break."""
    (tmp_path / "ticket.py").write_text(SCHEMA)
    frame = pl.DataFrame(
        {
            "id": list(range(1, rows + 1)),
            "code": [f"{i:05d}" for i in range(1, rows + 1)],
            "sent": [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(rows)],
            "amount": [None if i % 9 == 0 else i * 1.25 for i in range(rows)],
            "text": [
                f'Customer {i} writes, "about" order {i * 7}' + ("\nsecond line" if i % 5 else "")
                for i in range(rows)
            ],
        }
    )
    if kind == "csv":
        frame.write_csv(tmp_path / "in.csv")
    elif kind == "parquet":
        frame.write_parquet(tmp_path / "in.parquet")
    else:
        con = duckdb.connect(str(tmp_path / "in.duckdb"))
        con.register("frame", frame.to_arrow())
        con.execute("create table tickets as select * from frame")
        con.close()
    p = tmp_path / "p.yaml"
    p.write_text(PIPELINE.replace("SOURCE", SOURCES[kind]).replace("BASE_URL", server.base_url))
    return p


def table(db: Path, name: str) -> list[dict[str, Any]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        cur = con.execute(f"select * exclude ({', '.join(VOLATILE)}) from {name} order by id")
        names = [d[0] for d in cur.description]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    finally:
        con.close()


def runs(db: Path) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "select status, rows_total, rows_ok, rows_failed, rows_skipped, requests "
            "from _extract_runs order by started_at"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["csv", "parquet", "duckdb"])
def test_same_tables_as_the_local_engine(
    tmp_path: Path, server: ServerThread, cluster: str, kind: str
) -> None:
    # Faults the server draws from each body: the same bodies meet the same re-asks, refusals
    # and retries, so the tables match only if both engines send the same requests.
    server.configure(
        faults={"invalid": 0.15, "malformed": 0.1, "refusal": 0.05, "server_error": 0.1}
    )
    p = write_inputs(tmp_path, server, kind, rows=60)
    local = run_pipeline(p, {"output.path": str(tmp_path / "local.duckdb")})
    local_stats = server.stats()
    server.reset()
    remote = run_pipeline(p, {"output.path": str(tmp_path / "ray.duckdb")}, engine="ray")
    remote_stats = server.stats()

    assert (remote.rows_ok, remote.rows_failed) == (local.rows_ok, local.rows_failed)
    assert local.rows_ok + local.rows_failed == 60 and local.rows_failed > 0
    assert remote_stats["total_requests"] == local_stats["total_requests"] == remote.requests
    assert remote_stats["requests_by_row"] == local_stats["requests_by_row"]
    for name in ("tickets", "tickets_errors"):
        want = table(tmp_path / "local.duckdb", name)
        assert table(tmp_path / "ray.duckdb", name) == want, name
    assert len(table(tmp_path / "ray.duckdb", "tickets")) == local.rows_ok
    assert runs(tmp_path / "ray.duckdb") == runs(tmp_path / "local.duckdb")

    # a second run settles every row from the ledger on the driver: nothing is sent
    server.reset()
    again = run_pipeline(p, {"output.path": str(tmp_path / "ray.duckdb")}, engine="ray")
    assert (again.rows_skipped, again.requests, server.stats()["total_requests"]) == (60, 0, 0)


@pytest.mark.slow
def test_a_killed_worker_loses_and_repeats_nothing(
    tmp_path: Path, server: ServerThread, cluster: str
) -> None:
    from extract.engines.ray import RayEngine

    rows, shards, concurrency = 120, 2, 8
    server.configure(latency_ms=150)
    p = write_inputs(tmp_path, server, "csv", rows=rows)
    engine = RayEngine(workers=shards)
    killed: dict[str, Any] = {}

    def kill_one_worker() -> None:
        import ray

        deadline = time.monotonic() + 60
        while server.stats()["total_requests"] < 30 and time.monotonic() < deadline:
            time.sleep(0.02)
        pid, _ = ray.get(engine.actors[0].ready.remote())
        killed["requests_before"] = server.stats()["total_requests"]
        os.kill(pid, signal.SIGKILL)
        killed["pid"] = pid

    killer = threading.Thread(target=kill_one_worker)
    killer.start()
    with prepare(load_pipeline(p, {"run.concurrency": concurrency})) as pipeline:
        summary = run(pipeline, engine=engine)
    killer.join()
    stats = server.stats()
    seen = (killed, summary.status, summary.rows_ok, summary.rows_failed, stats["total_requests"])
    assert killed["pid"] > 0 and 30 <= killed["requests_before"] < rows, seen
    assert (summary.status, summary.rows_ok, summary.rows_failed) == ("completed", rows, 0), seen
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    try:
        counts = con.execute("select count(*), count(distinct id), min(id), max(id) from tickets")
        assert counts.fetchone() == (rows, rows, 1, rows)
        assert con.execute("select count(*) from tickets_errors").fetchone() == (0,)
    finally:
        con.close()
    # Every row was answered once; the requests beyond one a row were those of the rows in
    # flight on the killed actor, sent again to the actor Ray restarted: its requests out
    # (its share of run.concurrency: 4; measured: 4) and any answers it had sent that had not
    # reached the driver yet, within the driver's bound on rows in flight (2 x concurrency).
    # (A request cut before its body was read is counted in the total, not for its row.)
    per_row = stats["requests_by_row"]
    extra = stats["total_requests"] - rows
    print(f"worker-kill: {rows} rows, {stats['total_requests']} requests ({extra} in flight)")
    assert len(per_row) == rows and sum(per_row.values()) <= stats["total_requests"], seen
    assert 1 <= extra <= 2 * concurrency, (seen, stats["status_counts"], stats["faults"])


@pytest.mark.slow
def test_a_worker_lost_for_good_stops_the_run_and_the_next_run_finishes(
    tmp_path: Path, server: ServerThread, cluster: str
) -> None:
    from extract.engines.ray import RayEngine

    rows = 80
    server.configure(latency_ms=100)
    p = write_inputs(tmp_path, server, "csv", rows=rows)
    engine = RayEngine(workers=2, restarts=0)

    def kill_once() -> None:
        import ray

        while server.stats()["total_requests"] < 20:
            time.sleep(0.02)
        pid, _ = ray.get(engine.actors[1].ready.remote())
        os.kill(pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_once)
    killer.start()
    with (
        prepare(load_pipeline(p, {"run.concurrency": 8})) as pipeline,
        pytest.raises(WorkerLost) as e,
    ):
        run(pipeline, engine=engine)
    killer.join()
    assert e.value.shard == 1 and e.value.exit_code == 9
    assert str(e.value) == (
        "run.engine ray: the worker of shard 1 was lost (ActorDiedError; Ray restarts a worker"
        " 0 times); rows already written stay, run again to continue"
    )
    first = runs(tmp_path / "out/r.duckdb")
    assert [r[0] for r in first] == ["stopped"] and 0 < first[0][2] < rows

    # the same run again requests only what the first did not record
    done = first[0][2]
    asked = server.stats()["total_requests"]
    again = run_pipeline(p, engine="ray")
    assert (again.rows_ok, again.rows_skipped) == (rows - done, done)
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    try:
        assert con.execute("select count(*), count(distinct id) from tickets").fetchone() == (
            rows,
            rows,
        )
    finally:
        con.close()
    # every row answered once, apart from those in flight on the lost worker
    assert rows <= server.stats()["total_requests"] <= rows + 2 * 8
    assert server.stats()["total_requests"] - asked == rows - done


@pytest.mark.slow
def test_a_source_the_workers_cannot_read_is_one_line_naming_it(
    tmp_path: Path, server: ServerThread, cluster: str
) -> None:
    from extract.engines.ray import RayEngine

    p = write_inputs(tmp_path, server, "duckdb", rows=10)
    with prepare(load_pipeline(p)) as pipeline:
        # the driver has it open; Ray's read tasks find no such file (a node without it)
        (tmp_path / "in.duckdb").rename(tmp_path / "elsewhere.duckdb")
        with pytest.raises(SourceError) as e:
            run(pipeline, engine=RayEngine(workers=2))
    db = str(tmp_path / "in.duckdb")
    message = str(e.value)
    assert message.startswith(f"{db}: Ray could not read the input: {db}: cannot read key range")
    assert "\n" not in message and e.value.exit_code == 2
    assert server.stats()["total_requests"] == 0


@pytest.mark.slow
def test_a_worker_without_the_key_stops_the_run_before_any_request(
    tmp_path: Path, server: ServerThread, cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # set here after the cluster started: the driver has it, Ray's workers do not
    monkeypatch.setenv("TEST_EXTRACT_LATE_KEY", KEY)
    p = write_inputs(tmp_path, server, "csv", rows=5)
    p.write_text(p.read_text().replace(KEY_ENV, "TEST_EXTRACT_LATE_KEY"))
    with pytest.raises(EngineUnavailable) as e:
        run_pipeline(p, engine="ray")
    assert str(e.value) == (
        f"{p}:model.api_key_env: environment variable TEST_EXTRACT_LATE_KEY is not set on the"
        f" Ray worker of node {os.uname().nodename}; set it on every node"
    )
    assert server.stats()["total_requests"] == 0


@pytest.mark.slow
def test_cli_runs_on_a_given_cluster(tmp_path: Path, server: ServerThread, cluster: str) -> None:
    p = write_inputs(tmp_path, server, "duckdb", rows=20)
    env = {**os.environ, KEY_ENV: KEY}
    r = subprocess.run(
        [EXTRACT, "run", str(p), "--engine", "ray", "--address", cluster, "--limit", "15", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    # --limit: the first rows of the query, as a local run takes them
    assert runs(tmp_path / "out/r.duckdb") == [("completed", 15, 15, 0, 0, 15)]
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    try:
        ids = [r[0] for r in con.execute("select id from tickets order by id").fetchall()]
    finally:
        con.close()
    assert ids == list(range(1, 16))
    assert server.stats()["total_requests"] == 15
    assert KEY not in r.stdout + r.stderr

    # nothing listens there: one line at once, not ray.init's minutes of retries
    r = subprocess.run(
        [EXTRACT, "run", str(p), "--engine", "ray", "--address", "127.0.0.1:1", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (r.returncode, r.stderr) == (
        2,
        "extract: error: run.engine ray: cannot connect to the Ray cluster at 127.0.0.1:1: "
        "Connection refused\n",
    )
    # the run that could not start is recorded as failed, with its reason
    con = duckdb.connect(str(tmp_path / "out/r.duckdb"), read_only=True)
    try:
        last = con.execute(
            "select status, stop_reason, rows_ok from _extract_runs order by started_at desc"
        ).fetchone()
    finally:
        con.close()
    assert last == (
        "failed",
        "run.engine ray: cannot connect to the Ray cluster at 127.0.0.1:1: Connection refused",
        0,
    )


def test_without_ray_the_engine_names_the_install_command(
    tmp_path: Path, server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from extract.cli import main

    # `import ray` fails as it does where the extra is not installed
    monkeypatch.setitem(sys.modules, "ray", None)
    for name in [m for m in sys.modules if m.startswith("extract.engines.ray")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv(KEY_ENV, KEY)
    p = write_inputs(tmp_path, server, "csv", rows=3)
    message = (
        "run.engine ray needs Ray Data, which cannot be imported (import of ray halted; None in "
        "sys.modules): pip install 'extract[ray]'"
    )
    with pytest.raises(EngineUnavailable) as e:
        run_pipeline(p, engine="ray")
    assert str(e.value) == message and e.value.exit_code == 2
    r = CliRunner().invoke(main, ["run", str(p), "--engine", "ray"])
    assert (r.exit_code, r.output) == (2, f"extract: error: {message}\n")
    r = CliRunner().invoke(main, ["run", str(p), "--address", "auto"])
    assert (r.exit_code, r.output) == (
        2,
        "extract: error: --address names a Ray cluster: it needs --engine ray (run.engine: ray)\n",
    )
    assert server.stats()["total_requests"] == 0
