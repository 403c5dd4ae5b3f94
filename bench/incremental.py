"""An incremental run over a large output: the first run of N rows, then the same pipeline after
1% of the rows changed, timed against each other.

    .venv/bin/python bench/incremental.py [--rows 1000000] [--changed 0.01]

The test server runs in its own process with no latency; the output is a DuckDB file. The
second run must read, render and hash every source row (that is how it knows what changed), look
each batch up in the ledger, and request only the changed rows. Markdown to stdout.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from extract.api import run_pipeline
from extract.providers.base import stop_process
from extract.providers.testserver import ServerConfig, start_subprocess

SCHEMA = '''
from pydantic import BaseModel

class Ticket(BaseModel):
    customer: str
    order: int
'''

PIPELINE = """\
name: bench_incremental
source: {type: csv, path: in.csv, key: id}
schema: ticket.py:Ticket
prompt: {user: "Ticket {id}: {text}"}
model: {base_url: BASE_URL, api_key_env: null, seed: 7}
run: {concurrency: 64, grounding: false}
output: {type: duckdb, path: out.duckdb, table: tickets}
"""


def write_rows(path: Path, n: int, changed: set[int]) -> None:
    with path.open("w") as f:
        f.write("id,text\n")
        for i in range(n):
            note = " (amended)" if i in changed else ""
            f.write(f'{i},"Customer {i} writes about order {i * 7}{note}"\n')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--changed", type=float, default=0.01)
    args = parser.parse_args()
    process, base_url = start_subprocess(ServerConfig())
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp)
            (d / "ticket.py").write_text(SCHEMA)
            (d / "p.yaml").write_text(PIPELINE.replace("BASE_URL", base_url))
            step = max(1, round(1 / args.changed))
            changed = set(range(0, args.rows, step))
            for name, rows in (("first run", set()), (f"{len(changed)} rows changed", changed)):
                write_rows(d / "in.csv", args.rows, rows)
                started = time.perf_counter()
                cpu = time.process_time()
                s = run_pipeline(d / "p.yaml")
                results.append(
                    (name, s.requests, s.rows_skipped, time.perf_counter() - started,
                     time.process_time() - cpu)
                )  # fmt: skip
    finally:
        stop_process(process)
    first = results[0][3]
    print(f"{args.rows} rows, output in DuckDB\n")
    print("| run | requests | rows skipped | seconds | CPU s | vs the first run |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, requests, skipped, seconds, cpu in results:
        print(
            f"| {name} | {requests} | {skipped} | {seconds:.1f} | {cpu:.1f} | "
            f"{seconds / first:.1%} |"
        )


if __name__ == "__main__":
    main()
