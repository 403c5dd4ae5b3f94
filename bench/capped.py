"""A provider that caps concurrent requests below `run.concurrency`: requests per valid row,
rows lost to 429s, and throughput against what the cap allows.

    .venv/bin/python bench/capped.py [--rows 2000] [--cap 16] [--concurrency 64] [--latency-ms 100]

The test server on 127.0.0.1 answers after `--latency-ms` and refuses with 429 (no Retry-After,
as such providers do) any request beyond `--cap` in flight; the run goes through
`extract.run_pipeline` into a fresh output. The cap's limit is `cap / latency` rows a second.
Markdown to stdout.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from extract.api import run_pipeline
from extract.providers.testserver import ServerConfig, ServerThread

SCHEMA = '''
from pydantic import BaseModel

class Ticket(BaseModel):
    customer: str
    order: int
'''

PIPELINE = """\
name: bench_capped
source: {type: csv, path: in.csv, key: id}
schema: ticket.py:Ticket
prompt: {user: "Ticket {id}: {text}"}
model: {base_url: BASE_URL, api_key_env: null, seed: 7}
output: {type: duckdb, path: out.duckdb, table: tickets}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cap", type=int, default=16)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    ideal = args.cap / (args.latency_ms / 1000)
    print(
        f"{args.rows} rows, cap {args.cap}, {args.latency_ms:g} ms answers; the cap allows "
        f"{ideal:.0f} rows/s; rows/s counts the run from its start to its end\n"
    )
    print(
        "| run | valid | errors | requests | 429s | requests per valid row | rows/s "
        "| of the cap's |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    cases = [
        (f"capped at {args.cap}, run.concurrency {args.concurrency}", args.cap, args.concurrency),
        (f"no cap, run.concurrency {args.cap} (the reference)", None, args.cap),
    ]
    for name, cap, concurrency in cases:
        config = ServerConfig(latency_ms=args.latency_ms, max_concurrency=cap)
        with tempfile.TemporaryDirectory() as tmp, ServerThread(config) as server:
            d = Path(tmp)
            (d / "ticket.py").write_text(SCHEMA)
            rows = [f'{i},"Customer {i} about order {i * 7}"' for i in range(1, args.rows + 1)]
            (d / "in.csv").write_text("\n".join(["id,text", *rows]) + "\n")
            (d / "p.yaml").write_text(PIPELINE.replace("BASE_URL", server.base_url))
            summary = run_pipeline(d / "p.yaml", {"run.concurrency": concurrency})
            stats = server.stats()
        rate = summary.rows_ok / summary.seconds
        print(
            f"| {name} | {summary.rows_ok} | {summary.rows_failed} | {stats['total_requests']} | "
            f"{stats['capped']} | {stats['total_requests'] / max(1, summary.rows_ok):.3f} | "
            f"{rate:.1f} | {rate / ideal:.0%} |"
        )


if __name__ == "__main__":
    main()
