"""Sync against batch mode: HTTP requests, lines and cost of one run of the same rows.

    .venv/bin/python bench/batch.py [--rows 2000] [--faults invalid=0.05]

Both runs go through the real command path (`extract.run_pipeline`) against the project's test
server on 127.0.0.1, into fresh outputs; the server's counters say what was sent. Batch mode
runs with `--wait`, statuses stepping every 0.1 s. "HTTP requests" are every call the run made
(chat completions; or batch creates, status polls and result pages), "rows sent" the
chat-completions bodies (one per attempt). Markdown to stdout.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from extract.api import run_pipeline
from extract.providers.testserver import ServerConfig, ServerThread, parse_faults

SCHEMA = '''
from pydantic import BaseModel

class Ticket(BaseModel):
    """A support ticket."""
    customer: str
    order: int
    urgent: bool
'''

PIPELINE = """\
name: bench_batch
source: {type: csv, path: in.csv, key: id}
schema: ticket.py:Ticket
prompt: {user: "Ticket {id}: {text}"}
model: {base_url: BASE_URL, api_key_env: null, seed: 7}
run: {concurrency: 64, backoff_s: 0.05}
output: {type: duckdb, path: out.duckdb, table: tickets}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--faults", default="", help="content faults, e.g. invalid=0.05")
    args = parser.parse_args()
    faults = parse_faults(args.faults)
    results = []
    with tempfile.TemporaryDirectory() as tmp, ServerThread(
        ServerConfig(faults=faults, batch_step_s=0.1)
    ) as server:
        for mode in ("sync", "batch"):
            d = Path(tmp) / mode
            d.mkdir()
            (d / "ticket.py").write_text(SCHEMA)
            lines = ["id,text"] + [
                f'{i},"Customer {i} writes about order {i * 7}"' for i in range(1, args.rows + 1)
            ]
            (d / "in.csv").write_text("\n".join(lines) + "\n")
            (d / "p.yaml").write_text(PIPELINE.replace("BASE_URL", server.base_url))
            server.reset()
            overrides = {"run.mode": mode, "run.batch_poll_s": 0.1}
            if mode == "batch":
                overrides["model.batch_url"] = server.base_url + "/batches"
            started = time.perf_counter()
            summary = run_pipeline(d / "p.yaml", overrides, wait=True)
            seconds = time.perf_counter() - started
            stats = server.stats()
            batches = stats["batches"]
            http = stats["total_requests"] + sum(batches["status_counts"].values())
            results.append(
                (mode, summary.rows_ok, summary.rows_failed, summary.requests, http,
                 batches["created"], summary.usage.cost_usd or 0.0, seconds)
            )  # fmt: skip
    print(f"{args.rows} rows, faults: {args.faults or 'none'}, cores: {os.cpu_count()}\n")
    print("| mode | valid | errors | rows sent | HTTP requests | batches | cost USD | seconds |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for mode, ok, failed, sent, http, created, cost, seconds in results:
        print(
            f"| {mode} | {ok} | {failed} | {sent} | {http} | {created} | {cost:.6f} | "
            f"{seconds:.1f} |"
        )
    sync_cost, batch_cost = results[0][6], results[1][6]
    print(f"\nbatch / sync cost: {batch_cost / sync_cost:.3f}")


if __name__ == "__main__":
    main()
