"""What flows from the runner to the sinks: a RowResult per row, a RunSummary per run."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from .transport.base import Usage

__all__ = ["RowResult", "RunSummary", "new_run_id"]


def new_run_id() -> str:
    """A run's (or a replay's) id: its start in UTC, sortable, and a random suffix."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass(slots=True)
class RowResult:
    """What became of one row: a validated instance, or the error that ended it."""

    key: Any
    prompt_hash: str
    request_hash: str = ""
    instance: BaseModel | None = None
    #: the output came from the response cache, not from a request of this run
    from_cache: bool = False
    #: the output may already hold a row of this key, which this one replaces
    replaces: bool = True
    error_class: str | None = None
    message: str | None = None
    raw_output: str | None = None
    attempts: int = 0
    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    latency_ms: float = 0.0
    model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    #: the schema mirrored with each value's probability (extract/trust/columns.py)
    confidence: dict[str, Any] | None = None
    min_confidence: float | None = None
    #: enum and boolean values' lead over the runner-up, by value path
    margins: dict[str, float] | None = None
    #: the schema mirrored with where each value was found in the input text
    grounding: dict[str, Any] | None = None
    #: values of `grounding` that were not found
    ungrounded: int | None = None
    run_id: str = ""
    finished_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: run.mode batch: the batch whose line answered the row's last request
    batch_id: str | None = None
    #: the last reply's generation id and system fingerprint (what answered, for replays)
    generation_id: str | None = None
    system_fingerprint: str | None = None
    #: prompt.documents: the pages sent, `column:pages` per document (`invoice_pdf:1-3`)
    pages: str | None = None
    #: the parts a long input was split into (1: not split)
    parts: int = 1
    #: a split row: its parts' own results of this run, whose answers the cache keeps by their
    #: request hashes (so that a retry or a changed merge does not pay for them again)
    part_answers: list[RowResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.instance is not None


@dataclass(slots=True)
class RunSummary:
    """Counts and totals of one run; one row of `_extract_runs`."""

    run_id: str
    pipeline: str
    config_hash: str
    schema_hash: str
    model: str
    output: str
    table: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    status: str = "running"  # running | completed | stopped | interrupted | failed
    stop_reason: str | None = None
    rows_total: int = 0
    rows_ok: int = 0
    rows_failed: int = 0
    #: rows answered from the response cache (no request)
    rows_cached: int = 0
    #: rows already in the output for this exact request (or failed for it, without --retry-errors)
    rows_skipped: int = 0
    #: of the skipped rows, those in the errors table
    rows_failed_before: int = 0
    requests: int = 0
    usage: Usage = field(default_factory=Usage)
    #: run.mode batch: rows whose batch is still running (collected by a later run)
    rows_pending: int = 0
    #: what the run says once at its end (e.g. confidence asked for and not given)
    warnings: list[str] = field(default_factory=list)

    @property
    def cost_usd(self) -> float:
        """What the run's requests cost, in US dollars (answers from the cache cost nothing)."""
        return self.usage.cost_usd or 0.0

    @property
    def rows_done(self) -> int:
        return self.rows_ok + self.rows_failed + self.rows_cached + self.rows_skipped

    @property
    def rows_not_processed(self) -> int:
        return max(0, self.rows_total - self.rows_done - self.rows_pending)

    @property
    def seconds(self) -> float:
        end = self.ended_at or dt.datetime.now(dt.UTC)
        return (end - self.started_at).total_seconds()

    def record(self) -> dict[str, Any]:
        """The summary as a flat mapping (the columns of `_extract_runs`)."""
        u = self.usage
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "config_hash": self.config_hash,
            "schema_hash": self.schema_hash,
            "model": self.model,
            "output": self.output,
            "table_name": self.table,
            "status": self.status,
            "stop_reason": self.stop_reason,
            "rows_total": self.rows_total,
            "rows_ok": self.rows_ok,
            "rows_failed": self.rows_failed,
            "rows_cached": self.rows_cached,
            "rows_skipped": self.rows_skipped,
            "rows_not_processed": self.rows_not_processed,
            "requests": self.requests,
            "prompt_tokens": u.prompt_tokens,
            "completion_tokens": u.completion_tokens,
            "reasoning_tokens": u.reasoning_tokens,
            "cached_tokens": u.cached_tokens,
            "cost_usd": u.cost_usd,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "rows_pending": self.rows_pending,
        }
