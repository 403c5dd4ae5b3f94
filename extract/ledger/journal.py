"""The journal: finished rows made durable as they finish, one JSON line each.

The ledger folds journaled rows into its tables a batch at a time, in a writer thread; the journal
covers the gap. Rows are written to the current segment (`<db>.journal.<n>`) and the segment is
flushed out of the process once per event-loop turn, so a row is safe from `kill -9` within the
turn it finished in. When a batch is handed to the writer the segment is closed and a new one
begun; the closed segment is deleted once its batch is committed. A killed process leaves segments
behind, and at most a half-written last line, which is skipped: that row was in flight. Replay is
idempotent because the ledger replaces a key's row.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

import orjson
from pydantic import BaseModel

from ..results import RowResult
from ..transport.base import Usage

__all__ = ["Journal"]

_PLAIN = (
    "key", "prompt_hash", "request_hash", "from_cache", "error_class", "message", "raw_output",
    "attempts", "requests", "latency_ms", "model", "provider", "finish_reason", "run_id",
)  # fmt: skip
#: journaled since confidence, grounding and batches came in: read with a default, so a journal
#: written before that still replays (its rows are not paid for again)
_LATER = (
    "confidence", "margins", "min_confidence", "grounding", "ungrounded", "batch_id",
    "generation_id", "system_fingerprint", "pages", "parts",
)  # fmt: skip


def _entry(r: RowResult) -> str:
    u = r.usage
    data: dict[str, Any] = {name: getattr(r, name) for name in _PLAIN + _LATER}
    data["usage"] = [u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens,
                     u.cost_usd]  # fmt: skip
    data["finished_at"] = r.finished_at.isoformat()
    # The output is serialised by pydantic's own (compiled) encoder and spliced in; round_trip so
    # a Json[X] field is written as the JSON text it is read back from.
    output = r.instance.model_dump_json(round_trip=True) if r.instance is not None else "null"
    try:
        # orjson: the grounding and confidence trees made this the costliest line of a row
        rest = orjson.dumps(data, default=str).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an int key beyond 64 bits
        rest = json.dumps(data, default=str)
    return '{"output":' + output + "," + rest[1:] + "\n"


def _result(data: dict[str, Any], model: type[BaseModel]) -> RowResult:
    output = data["output"]
    trust: dict[str, Any] = {name: data.get(name) for name in _LATER}
    trust["parts"] = trust["parts"] or 1  # journaled before long inputs were split
    return RowResult(
        **{name: data[name] for name in _PLAIN},
        **trust,
        # JSON mode (a strict=True model reads ISO dates from JSON only) and by name as well as
        # by alias: the dump is keyed by field name, whatever the aliases say
        instance=None
        if output is None
        else model.model_validate_json(json.dumps(output), by_name=True),
        usage=Usage(*data["usage"]),
        finished_at=dt.datetime.fromisoformat(data["finished_at"]),
        # A journaled row may already be committed (killed between commit and deletion).
        replaces=True,
    )


class Journal:
    """Append-only segments of finished rows beside the ledger's database file."""

    def __init__(self, db_path: Path):
        self.db_path = db_path
        self._segment = 0
        self._file: IO[str] | None = None
        self._dirty = False

    def _segments(self) -> list[Path]:
        found = self.db_path.parent.glob(self.db_path.name + ".journal*")
        return sorted(found, key=lambda p: (len(p.name), p.name))

    def _path(self, n: int) -> Path:
        return self.db_path.with_name(f"{self.db_path.name}.journal.{n}")

    def replay(self, model: type[BaseModel]) -> list[RowResult]:
        """The rows a killed run journaled, the latest per key. Lines that cannot be read (cut
        short by the kill, or written under another schema) are left out: those rows are simply
        requested again."""
        latest: dict[str, RowResult] = {}
        for path in self._segments():
            with path.open(encoding="utf-8") as f:
                for line in f:
                    try:
                        result = _result(json.loads(line), model)
                    except (ValueError, KeyError, TypeError):
                        continue
                    latest[json.dumps(result.key, default=str)] = result
        return list(latest.values())

    def remove_all(self) -> None:
        """Delete every segment (after a replay has been committed)."""
        for path in self._segments():
            path.unlink()

    def append(self, result: RowResult) -> None:
        """Write a finished row to the current segment (made durable by the next `sync`)."""
        if self._file is None:
            self._file = self._path(self._segment).open("a", encoding="utf-8")
        self._file.write(_entry(result))
        self._dirty = True

    def sync(self) -> None:
        """Hand what was appended to the operating system: from now on a killed process cannot
        lose it (an OS crash could; guarding against that would cost a disk flush a row)."""
        if self._file is not None and self._dirty:
            self._file.flush()
            self._dirty = False

    def rotate(self) -> Path | None:
        """Close the current segment and begin the next; return the closed one's path."""
        if self._file is None:
            return None
        self._file.close()
        self._file = None
        self._dirty = False
        closed = self._path(self._segment)
        self._segment += 1
        return closed

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
