"""What streaming costs per row: the client's CPU time for the same rows, whole replies against
server-sent events.

    .venv/bin/python bench/streaming.py [--rows 2000] [--reps 3]

The test server runs in its own process (`start_subprocess`), so the CPU measured
(`time.process_time`, this process only) is extract's alone: reading, parsing, validating and
writing each row. Each mode runs `--reps` times into fresh outputs; the table shows the median.
Markdown to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from extract.api import run_pipeline
from extract.providers.base import stop_process
from extract.providers.testserver import ServerConfig, start_subprocess

SCHEMA = '''
from pydantic import BaseModel

class Ticket(BaseModel):
    """A support ticket."""
    customer: str
    order: int
    summary: str
    urgent: bool
'''

PIPELINE = """\
name: bench_streaming
source: {type: csv, path: in.csv, key: id}
schema: ticket.py:Ticket
prompt: {user: "Ticket {id}: {text}"}
model: {base_url: BASE_URL, api_key_env: null, seed: 7}
run: {concurrency: 32}
output: {type: duckdb, path: out.duckdb, table: tickets}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    process, base_url = start_subprocess(ServerConfig())
    cpu: dict[bool, list[float]] = {False: [], True: []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.reps):
                for stream in (False, True):
                    d = Path(tmp) / f"{rep}-{stream}"
                    d.mkdir()
                    (d / "ticket.py").write_text(SCHEMA)
                    lines = [f'{i},"Customer {i} about order {i * 7}"' for i in range(args.rows)]
                    (d / "in.csv").write_text("\n".join(["id,text", *lines]) + "\n")
                    (d / "p.yaml").write_text(PIPELINE.replace("BASE_URL", base_url))
                    started = time.process_time()
                    summary = run_pipeline(d / "p.yaml", {"model.stream": stream})
                    cpu[stream].append(time.process_time() - started)
                    assert summary.rows_ok == args.rows, summary
    finally:
        stop_process(process)
    whole, streamed = statistics.median(cpu[False]), statistics.median(cpu[True])
    print(f"{args.rows} rows, median of {args.reps} runs, client CPU only\n")
    print("| replies | CPU s | CPU ms per row | vs whole replies |")
    print("| --- | ---: | ---: | ---: |")
    for name, value in (("whole", whole), ("streamed (SSE)", streamed)):
        print(f"| {name} | {value:.2f} | {value / args.rows * 1000:.3f} | {value / whole:.2f}x |")


if __name__ == "__main__":
    main()
