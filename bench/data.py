"""Deterministic input rows, the DuckDB copy of them, and the pipeline file for `extract run`.

`write_csv` is stdlib-only so that the orchestrating process stays small: a child's peak RSS as
Linux reports it (ru_maxrss) starts from the parent's, see measure.py. `python -m bench.data
to-duckdb CSV DB` makes the DuckDB source in a child process for the same reason.
"""

from __future__ import annotations

import csv
import json
import os
import random
import sys
from pathlib import Path

from bench import settings

_FIRST = ["Anna", "Jörg", "Lucía", "Tom", "Mei", "Olu", "Sanna", "Pierre", "Ivana", "Raj"]
_LAST = ["Berg", "Müller", "García", "Walsh", "Chen", "Adeyemi", "Virtanen", "Dubois", "Novak"]
_PRODUCTS = [
    "AeroPress Go",
    "Kindle Paperwhite",
    "merino sweater",
    "Premium plan",
    "desk lamp",
    "trail shoes",
    "espresso grinder",
    "phone case",
    "yoga mat",
    "rain jacket",
]
_OPENERS = ["Hi,", "Hello team,", "Dear support,", "Hey", "Good morning,", "Hallo,"]
_ISSUES = [
    "my order {ref} arrived with the {product} broken and I want my {amount} EUR back",
    "I was charged twice for the {product}, please refund {amount} EUR",
    "where is my parcel? order {ref} was due last week",
    "the {product} stopped working after two days",
    "I cannot log in since the last update, the reset mail never comes",
    "do you ship the {product} to Norway and how long does it take?",
    "just wanted to say the {product} is great, thanks!",
    "please change the delivery address of {ref} to my office",
    "the {product} is not what the photos showed, I'd like to return it",
]
_CLOSERS = ["Thanks in advance.", "Regards,", "Cheers,", "Best wishes,", "Not happy at all."]
_SUBJECTS = [
    "Order problem",
    "Refund please",
    "Question",
    "Login issue",
    "Where is my parcel",
    "Feedback",
    "Return request",
    "Änderung der Adresse",
    "Broken item",
]


def _row(rng: random.Random, i: int) -> tuple[int, str, str]:
    product = rng.choice(_PRODUCTS)
    issue = rng.choice(_ISSUES).format(
        ref=f"#{rng.randrange(100000, 999999)}",
        product=product,
        amount=f"{rng.randrange(5, 500)}.{rng.randrange(100):02d}",
    )
    name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    # The customer number makes every row's text distinct: extract sends one request for rows
    # whose requests are identical, which would make it look cheaper than the others.
    body = f"{rng.choice(_OPENERS)} {issue}. {rng.choice(_CLOSERS)} {name}, customer {700_000 + i}"
    # Row ids start high so the key never looks like a row number.
    return 100_000 + i, rng.choice(_SUBJECTS), body


def write_csv(path: Path, rows: int, *, seed: int = 7) -> Path:
    """Write `rows` rows (id, subject, body) to `path`, the same bytes for the same arguments."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, quoting=csv.QUOTE_MINIMAL, lineterminator="\n")
        writer.writerow(["id", "subject", "body"])
        for i in range(rows):
            writer.writerow(_row(rng, i))
    return path


def write_pipeline(
    folder: Path,
    *,
    base_url: str,
    source: Path,
    source_type: str = "csv",
    concurrency: int,
    output: Path,
) -> Path:
    """The pipeline file for `extract run` (JSON is YAML), against the benchmark's test server."""
    source_cfg: dict[str, object] = {"type": source_type, "path": str(source), "key": "id"}
    if source_type == "duckdb":
        source_cfg["table"] = "tickets"
    config = {
        "name": "bench",
        "source": source_cfg,
        "schema": f"{settings.SCHEMA_FILE}:{settings.SCHEMA_CLASS}",
        "prompt": {"system": settings.SYSTEM, "user": settings.USER},
        "model": {
            "provider": "api",
            "name": settings.MODEL,
            "base_url": base_url,
            "api_key_env": None,
            "seed": settings.SEED,
            "temperature": settings.TEMPERATURE,
            "max_tokens": settings.MAX_TOKENS,
        },
        "run": {
            "concurrency": concurrency,
            "max_attempts": settings.MAX_ATTEMPTS,
            "max_retries": settings.MAX_RETRIES,
            "backoff_s": settings.BACKOFF_S,
            # BENCH_GROUNDING=0 measures extract without grounding (it is on by default)
            "grounding": os.environ.get("BENCH_GROUNDING", "1") != "0",
        },
        "output": {"type": "duckdb", "path": str(output), "table": "tickets"},
    }
    path = folder / f"pipeline-{source_type}.yaml"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def _to_duckdb(csv_path: str, db_path: str) -> None:
    import duckdb

    Path(db_path).unlink(missing_ok=True)
    with duckdb.connect(db_path) as con:
        con.execute(
            "CREATE TABLE tickets AS SELECT * FROM read_csv(?, header=true, delim=',', "
            "quote='\"', escape='\"', columns={'id': 'BIGINT', 'subject': 'VARCHAR', "
            "'body': 'VARCHAR'})",
            [csv_path],
        )


def _count_output(db_path: str) -> None:
    """Print the counts `extract run` left in its output, read back from the database itself."""
    import duckdb

    with duckdb.connect(db_path, read_only=True) as con:
        ok = con.execute("SELECT count(*), count(DISTINCT id) FROM tickets").fetchone()
        err = con.execute("SELECT count(*), count(DISTINCT id) FROM tickets_errors").fetchone()
        both = con.execute(
            "SELECT count(*) FROM tickets t JOIN tickets_errors e USING (id)"
        ).fetchone()
        run = con.execute(
            "SELECT epoch(ended_at) - epoch(started_at), requests FROM _extract_runs"
        ).fetchone()
    assert ok is not None and err is not None and both is not None
    print(
        json.dumps(
            {
                "valid": ok[1],
                "errors": err[1],
                "duplicates": (ok[0] - ok[1]) + (err[0] - err[1]) + both[0],
                "run_s": run[0] if run else None,
                "requests_reported": run[1] if run else None,
            }
        )
    )


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "to-duckdb":
        _to_duckdb(*args)
    elif command == "count-output":
        _count_output(*args)
    else:
        raise SystemExit(f"unknown command {command!r}")
