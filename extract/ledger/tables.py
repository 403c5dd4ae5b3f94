"""The ledger's tables and their columns: one spec per column, read by name everywhere.

For a pipeline writing table T:
- `T`: the key column, one typed column per schema field, then PROVENANCE;
- `T_errors`: the key column, then ERROR_COLUMNS;
- `_extract_cache`: CACHE_COLUMNS, validated outputs by request hash;
- `_extract_runs`: RUN_COLUMNS, one row per run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..results import RowResult
from ..sql import ident

__all__ = [
    "CACHE_COLUMNS",
    "CACHE_TABLE",
    "ERROR_COLUMNS",
    "PROVENANCE",
    "RUNS_TABLE",
    "RUN_COLUMNS",
    "Spec",
    "ddl",
]

CACHE_TABLE = "_extract_cache"
RUNS_TABLE = "_extract_runs"


@dataclass(frozen=True)
class Spec:
    """A column: its name, DuckDB type, and how a RowResult gives its value (None: a constant
    of the run, or a column that is not per-row)."""

    name: str
    duckdb_type: str
    get: Callable[[RowResult], Any] | None = None


PROVENANCE: list[Spec] = [
    Spec("_status", "VARCHAR"),
    Spec("_model", "VARCHAR", lambda r: r.model),
    Spec("_provider", "VARCHAR", lambda r: r.provider),
    Spec("_seed", "BIGINT"),
    Spec("_attempts", "INTEGER", lambda r: r.attempts),
    Spec("_requests", "INTEGER", lambda r: r.requests),
    Spec("_prompt_tokens", "BIGINT", lambda r: r.usage.prompt_tokens),
    Spec("_completion_tokens", "BIGINT", lambda r: r.usage.completion_tokens),
    Spec("_reasoning_tokens", "BIGINT", lambda r: r.usage.reasoning_tokens),
    Spec("_cached_tokens", "BIGINT", lambda r: r.usage.cached_tokens),
    Spec("_cost_usd", "DOUBLE", lambda r: r.usage.cost_usd),
    Spec("_latency_ms", "DOUBLE", lambda r: round(r.latency_ms, 3)),
    Spec("_finish_reason", "VARCHAR", lambda r: r.finish_reason),
    Spec("_run_id", "VARCHAR", lambda r: r.run_id),
    Spec("_prompt_hash", "VARCHAR", lambda r: r.prompt_hash),
    Spec("_request_hash", "VARCHAR", lambda r: r.request_hash),
    Spec("_schema_hash", "VARCHAR"),
    Spec("_extracted_at", "TIMESTAMPTZ", lambda r: r.finished_at),
    # last, so that a table written before batches came in gains it in place
    Spec("_batch_id", "VARCHAR", lambda r: r.batch_id),
    Spec("_generation_id", "VARCHAR", lambda r: r.generation_id),
    Spec("_system_fingerprint", "VARCHAR", lambda r: r.system_fingerprint),
    # prompt.documents: the pages sent, `column:pages` per document (`invoice_pdf:1-3`)
    Spec("_pages", "VARCHAR", lambda r: r.pages),
    # the parts a long input was split into (1: not split; null in rows written before splits)
    Spec("_parts", "INTEGER", lambda r: r.parts),
]

ERROR_COLUMNS: list[Spec] = [
    Spec("_error_class", "VARCHAR", lambda r: r.error_class),
    Spec("_message", "VARCHAR", lambda r: r.message),
    Spec("_raw_output", "VARCHAR", lambda r: r.raw_output),
    *[c for c in PROVENANCE if c.name != "_status"],
]

#: a cached output keeps the per-row provenance, named without the leading underscore
_NOT_CACHED = {
    "_status", "_seed", "_schema_hash", "_prompt_hash", "_request_hash",
    # where one answer came from, not the answer: the cache's columns stay as they were
    "_batch_id", "_generation_id", "_system_fingerprint",
    # the row's input, not the answer (a cached answer takes its row's pages)
    "_pages",
    # after `trust`, so that a cache written before long inputs were split gains it in place
    "_parts",
}  # fmt: skip
CACHE_COLUMNS: list[Spec] = [
    Spec("request_hash", "VARCHAR", lambda r: r.request_hash),
    Spec("output", "VARCHAR"),
    *[Spec(c.name[1:], c.duckdb_type, c.get) for c in PROVENANCE if c.name not in _NOT_CACHED],
    # the answer's confidence as JSON (grounding depends on the row's text: worked out again)
    Spec("trust", "VARCHAR"),
    Spec("parts", "INTEGER", lambda r: r.parts),
]

RUN_COLUMNS: list[Spec] = [
    Spec("run_id", "VARCHAR PRIMARY KEY"),
    *[
        Spec(name, kind)
        for name, kind in (
            ("pipeline", "VARCHAR"),
            ("config_hash", "VARCHAR"),
            ("schema_hash", "VARCHAR"),
            ("model", "VARCHAR"),
            ("output", "VARCHAR"),
            ("table_name", "VARCHAR"),
            ("status", "VARCHAR"),
            ("stop_reason", "VARCHAR"),
            ("rows_total", "BIGINT"),
            ("rows_ok", "BIGINT"),
            ("rows_failed", "BIGINT"),
            ("rows_cached", "BIGINT"),
            ("rows_skipped", "BIGINT"),
            ("rows_not_processed", "BIGINT"),
            ("requests", "BIGINT"),
            ("prompt_tokens", "BIGINT"),
            ("completion_tokens", "BIGINT"),
            ("reasoning_tokens", "BIGINT"),
            ("cached_tokens", "BIGINT"),
            ("cost_usd", "DOUBLE"),
            ("started_at", "TIMESTAMPTZ"),
            ("ended_at", "TIMESTAMPTZ"),
            ("rows_pending", "BIGINT"),
        )
    ],
]


def ddl(specs: list[Spec]) -> str:
    """The column list of a CREATE TABLE."""
    return ", ".join(f"{ident(c.name)} {c.duckdb_type}" for c in specs)
