"""What the floor loop and the peers share: reading rows, the messages, the re-ask, the report.

The first turn and the re-ask are built exactly as `extract` builds them (extract/prompt.py and
extract/validate.py `reask`), so the floor sends byte-identical requests and meets the very same
injected faults (the test server draws a fault from a hash of the request body). This module
imports nothing from `extract` except the schema compiler, whose package import the clients pay
for anyway (see `load_schema`).
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from bench import schema, settings

Message = dict[str, Any]

#: characters of a bad answer sent back in a re-ask, as extract/validate.py REASK_ANSWER_CHARS
REASK_ANSWER_CHARS = 8000
RESPONSE_FORMAT_FILE = "response_format.json"


@dataclass
class Outcome:
    """What a client run reports back to bench/run.py as JSON."""

    valid: int = 0
    errors: int = 0
    requests: int = 0
    run_s: float = 0.0
    error_classes: dict[str, int] = field(default_factory=dict)

    def failed(self, kind: str) -> None:
        self.errors += 1
        self.error_classes[kind] = self.error_classes.get(kind, 0) + 1


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--rows", type=Path, required=True, help="CSV file with id,subject,body")
    parser.add_argument("--concurrency", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="where to write the JSON outcome")
    return parser.parse_args()


def read_rows(path: Path) -> Iterator[dict[str, str]]:
    """Stream the CSV rows (never the whole file in memory)."""
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _render(template: str, row: dict[str, str]) -> str:
    # str.format_map is what extract's parsed template does for plain {column} placeholders.
    return template.format_map(row)


def first_turn(row: dict[str, str]) -> list[Message]:
    return [
        {"role": "system", "content": _render(settings.SYSTEM, row)},
        {"role": "user", "content": _render(settings.USER, row)},
    ]


def request_body(response_format: dict[str, Any], messages: list[Message]) -> dict[str, Any]:
    """The body extract sends, key for key in the same order (pipeline.py `request_template`)."""
    return {
        "model": settings.MODEL,
        "response_format": response_format,
        "seed": settings.SEED,
        "temperature": settings.TEMPERATURE,
        "max_tokens": settings.MAX_TOKENS,
        "messages": messages,
    }


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def check_answer(content: str | None, model: type[BaseModel]) -> tuple[BaseModel | None, str]:
    """The validated instance, or None and what to tell the model (extract/validate.py's words)."""
    if content is None or not content.strip():
        return None, "the answer is empty"
    try:
        data = json.loads(content)
    except ValueError:
        start, end = content.find("{"), content.rfind("}")
        if start == -1 or end <= start:
            return None, "the answer is not JSON"
        try:
            data = json.loads(content[start : end + 1])
        except ValueError as e:
            return None, f"the answer is not valid JSON: {e}"
    if not isinstance(data, dict):
        return None, _problem(["(root): expected a JSON object"])
    try:
        return model.model_validate(data), ""
    except ValidationError as e:
        errors = [
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}"
            for err in e.errors(include_url=False)
        ]
        return None, _problem(errors)


def _problem(details: list[str]) -> str:
    return (
        "Your answer was not valid for the required JSON schema:\n- "
        + "\n- ".join(details[:20])
        + "\nReply with only the corrected JSON object."
    )


def reask(first: list[Message], content: str | None, problem: str) -> list[Message]:
    """First turn + the bad answer + what was wrong with it: extract's bounded re-ask."""
    if not problem.startswith("Your answer"):
        problem = _problem([problem])
    answer: Message = {"role": "assistant", "content": (content or "")[:REASK_ANSWER_CHARS]}
    return [*first, answer, {"role": "user", "content": problem}]


def compile_to(path: Path) -> None:
    """Compile the bench model with extract's schema compiler and save the response_format.

    Run once per scenario in a child process (`python -m bench.common compile PATH`), so that the
    floor and the peers read the very response_format extract sends without importing `extract`,
    whose package import pulls in duckdb, polars and pyarrow.
    """
    from extract.schema import compile_schema

    compiled = compile_schema(schema.BenchTicket)
    if compiled.needs_decoding:
        raise SystemExit("the bench schema must validate with the model as is (no dicts, tuples)")
    path.write_text(json.dumps(compiled.response_format), encoding="utf-8")


def load_response_format(rows: Path) -> dict[str, Any]:
    """The response_format compiled by `compile_to` into the rows' folder."""
    data: dict[str, Any] = json.loads((rows.parent / RESPONSE_FORMAT_FILE).read_text("utf-8"))
    return data


class Clock:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    def seconds(self) -> float:
        return time.perf_counter() - self.started


def write_outcome(path: Path, outcome: Outcome) -> None:
    path.write_text(json.dumps(asdict(outcome)), encoding="utf-8")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] != ["compile"] or len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.common compile PATH")
    compile_to(Path(sys.argv[2]))
