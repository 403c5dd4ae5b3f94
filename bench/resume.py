"""Kill -9 a real `extract run` several times, resume it, and count what was paid twice.

    .venv/bin/python -m bench.resume [--rows 5000] [--kills 3] [--concurrency 64] [--latency-ms 200]

Against the project's test server (its own process, 200 +- 50 ms per request by default): an
uninterrupted reference run into one output; then, into another output, runs that are killed with
SIGKILL at random moments, and a last run to the end. Prints a table: requests sent in all against
rows, the requests the kills cost (in flight when killed), whether the final table equals the
reference (every column but the run id, latency and timestamp, which differ between runs by
nature), and how long a no-op rerun (every row already done) takes.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import duckdb

from bench.data import write_csv, write_pipeline
from extract.providers.testserver import ServerConfig, start_subprocess

EXTRACT = str(Path(sys.executable).parent / "extract")
COMPARED = "* EXCLUDE (_run_id, _latency_ms, _extracted_at)"


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/stats", timeout=10) as resp:
        data = json.load(resp)
    return {"requests": int(data["total_requests"]), "rows": len(data["requests_by_row"])}


def _reset(base_url: str) -> None:
    req = urllib.request.Request(base_url.removesuffix("/v1") + "/reset", method="POST")
    urllib.request.urlopen(req, timeout=10).close()


def _table(db: Path) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(f"select {COMPARED} from tickets order by id").fetchall()
    finally:
        con.close()


def _run(pipeline: Path) -> float:
    started = time.perf_counter()
    subprocess.run([EXTRACT, "run", str(pipeline), "-q"], check=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resume", description=__doc__)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    server, base_url = start_subprocess(
        ServerConfig(latency_ms=args.latency_ms, jitter_ms=args.latency_ms / 4)
    )
    try:
        with tempfile.TemporaryDirectory(prefix="extract-resume-") as tmp:
            root = Path(tmp)
            rows = write_csv(root / "rows.csv", args.rows)
            ref = write_pipeline(
                root,
                base_url=base_url,
                source=rows,
                concurrency=args.concurrency,
                output=root / "ref.duckdb",
            )
            full_seconds = _run(ref)
            work_dir = root / "work"
            work_dir.mkdir()
            work = write_pipeline(
                work_dir,
                base_url=base_url,
                source=rows,
                concurrency=args.concurrency,
                output=root / "work.duckdb",
            )
            _reset(base_url)
            kills = 0
            for _ in range(args.kills):
                proc = subprocess.Popen([EXTRACT, "run", str(work), "-q"])
                time.sleep(rng.uniform(0.1, 0.3) * full_seconds)
                if proc.poll() is None:
                    proc.send_signal(signal.SIGKILL)
                    kills += 1
                proc.wait()
            _run(work)
            paid = _stats(base_url)
            _reset(base_url)
            noop_seconds = _run(work)
            noop = _stats(base_url)
            same = _table(root / "work.duckdb") == _table(root / "ref.duckdb")
    finally:
        server.terminate()
        server.wait()
    extra = paid["requests"] - args.rows
    print(
        f"| rows | kills (SIGKILL) | requests in all | requests / row | paid twice "
        f"(<= {args.kills} x {args.concurrency} in flight) | rows requested | final table == "
        "uninterrupted | uninterrupted run s | no-op rerun s | no-op requests |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(
        f"| {args.rows} | {kills} | {paid['requests']} | {paid['requests'] / args.rows:.4f} | "
        f"{extra} | {paid['rows']} | {'yes' if same else 'NO'} | {full_seconds:.1f} | "
        f"{noop_seconds:.2f} | {noop['requests']} |"
    )
    return 0 if same and noop["requests"] == 0 and extra <= kills * args.concurrency else 1


if __name__ == "__main__":
    sys.exit(main())
