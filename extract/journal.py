"""The journal: finished rows made durable the moment they finish, one JSON line each.

The ledger folds journaled rows into its tables a batch at a time; the journal covers the gap.
A process killed at any moment leaves at most a half-written last line, which is skipped: that
row was still in flight, and is requested again. Replay is idempotent because the ledger replaces
a key's row.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from .client import Usage
from .results import RowResult

__all__ = ["Journal"]

_PLAIN = (
    "key", "prompt_hash", "request_hash", "from_cache", "error_class", "message", "raw_output",
    "attempts", "requests", "latency_ms", "model", "provider", "finish_reason", "run_id",
)  # fmt: skip


def _entry(r: RowResult) -> str:
    u = r.usage
    data: dict[str, Any] = {name: getattr(r, name) for name in _PLAIN}
    data["output"] = r.instance.model_dump(mode="json") if r.instance is not None else None
    data["usage"] = [u.prompt_tokens, u.completion_tokens, u.reasoning_tokens, u.cached_tokens,
                     u.cost_usd]  # fmt: skip
    data["finished_at"] = r.finished_at.isoformat()
    return json.dumps(data, default=str) + "\n"


def _result(data: dict[str, Any], model: type[BaseModel]) -> RowResult:
    output = data["output"]
    return RowResult(
        **{name: data[name] for name in _PLAIN},
        instance=None if output is None else model.model_validate(output),
        usage=Usage(*data["usage"]),
        # A journaled row may already be committed (killed between commit and truncate).
        replaces=True,
        finished_at=dt.datetime.fromisoformat(data["finished_at"]),
    )


class Journal:
    """An append-only file of finished rows beside the ledger's database."""

    def __init__(self, path: Path):
        self.path = path
        self._file: IO[str] | None = None

    def replay(self, model: type[BaseModel]) -> list[RowResult]:
        """The rows a killed run journaled, the latest per key; lines that cannot be read (cut
        short by the kill, or written under another schema) are left out: those rows are simply
        requested again."""
        if not self.path.exists():
            return []
        latest: dict[str, RowResult] = {}
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    result = _result(json.loads(line), model)
                except (ValueError, KeyError, TypeError):
                    continue
                latest[json.dumps(result.key, default=str)] = result
        return list(latest.values())

    def append(self, result: RowResult) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(_entry(result))
        # Out of this process now: a kill -9 cannot lose it (an OS crash could; that is fsync's job
        # and would cost a disk flush per row).
        self._file.flush()

    def clear(self) -> None:
        """Empty the journal once its rows are committed to the tables."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
        elif self.path.exists():
            self.path.unlink()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
