"""Where results go: typed DuckDB tables (default), or Parquet / CSV files.

Results are buffered and written in batches as they arrive, each batch in one transaction, so a
crash loses only what was in flight. In DuckDB a row's key replaces any earlier row of that key, in
the results table and in `<table>_errors` alike, so re-running a pipeline never duplicates a row.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from .columns import Column, columns_ddl, to_frame
from .errors import SinkError
from .results import RowResult, RunSummary

__all__ = ["Sink", "open_sink"]

PROVENANCE: list[tuple[str, str, pl.DataType]] = [
    ("_status", "VARCHAR", pl.String()),
    ("_model", "VARCHAR", pl.String()),
    ("_provider", "VARCHAR", pl.String()),
    ("_seed", "BIGINT", pl.Int64()),
    ("_attempts", "INTEGER", pl.Int32()),
    ("_requests", "INTEGER", pl.Int32()),
    ("_prompt_tokens", "BIGINT", pl.Int64()),
    ("_completion_tokens", "BIGINT", pl.Int64()),
    ("_reasoning_tokens", "BIGINT", pl.Int64()),
    ("_cached_tokens", "BIGINT", pl.Int64()),
    ("_cost_usd", "DOUBLE", pl.Float64()),
    ("_latency_ms", "DOUBLE", pl.Float64()),
    ("_finish_reason", "VARCHAR", pl.String()),
    ("_run_id", "VARCHAR", pl.String()),
    ("_prompt_hash", "VARCHAR", pl.String()),
    ("_schema_hash", "VARCHAR", pl.String()),
    ("_extracted_at", "TIMESTAMPTZ", pl.Datetime("us", "UTC")),
]

ERROR_COLUMNS: list[tuple[str, str, pl.DataType]] = [
    ("_error_class", "VARCHAR", pl.String()),
    ("_message", "VARCHAR", pl.String()),
    ("_raw_output", "VARCHAR", pl.String()),
    *[c for c in PROVENANCE if c[0] != "_status"],
]

RUN_COLUMNS = """
    run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, config_hash VARCHAR, schema_hash VARCHAR,
    model VARCHAR, output VARCHAR, table_name VARCHAR, status VARCHAR, stop_reason VARCHAR,
    rows_total BIGINT, rows_ok BIGINT, rows_failed BIGINT, rows_not_processed BIGINT,
    requests BIGINT, prompt_tokens BIGINT, completion_tokens BIGINT, reasoning_tokens BIGINT,
    cached_tokens BIGINT, cost_usd DOUBLE, started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ
"""


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


class Sink(Protocol):
    """What the runner writes to."""

    def write(self, results: Sequence[RowResult]) -> None: ...
    def finish(self, summary: RunSummary) -> None: ...
    def close(self) -> None: ...


class _Frames:
    """Builds the typed frames of a batch: key, schema columns, provenance."""

    def __init__(
        self,
        key: str,
        key_dtype: pl.DataType | None,
        columns: list[Column],
        seed: int,
        run_id: str,
        schema_hash: str,
    ):
        self.key = key
        self.key_dtype = key_dtype
        self.columns = columns
        self.seed = seed
        self.run_id = run_id
        self.schema_hash = schema_hash

    def _provenance(
        self, rs: Sequence[RowResult], spec: list[tuple[str, str, pl.DataType]], status: str | None
    ) -> dict[str, pl.Series]:
        now = dt.datetime.now(dt.UTC)
        values: dict[str, list[Any]] = {
            "_status": [status] * len(rs),
            "_model": [r.model for r in rs],
            "_provider": [r.provider for r in rs],
            "_seed": [self.seed] * len(rs),
            "_attempts": [r.attempts for r in rs],
            "_requests": [r.requests for r in rs],
            "_prompt_tokens": [r.usage.prompt_tokens for r in rs],
            "_completion_tokens": [r.usage.completion_tokens for r in rs],
            "_reasoning_tokens": [r.usage.reasoning_tokens for r in rs],
            "_cached_tokens": [r.usage.cached_tokens for r in rs],
            "_cost_usd": [r.usage.cost_usd for r in rs],
            "_latency_ms": [round(r.latency_ms, 3) for r in rs],
            "_finish_reason": [r.finish_reason for r in rs],
            "_run_id": [self.run_id] * len(rs),
            "_prompt_hash": [r.prompt_hash for r in rs],
            "_schema_hash": [self.schema_hash] * len(rs),
            "_extracted_at": [now] * len(rs),
            "_error_class": [r.error_class for r in rs],
            "_message": [r.message for r in rs],
            "_raw_output": [r.raw_output for r in rs],
        }
        return {name: pl.Series(name, values[name], dtype=dtype) for name, _, dtype in spec}

    def _keys(self, rs: Sequence[RowResult]) -> pl.Series:
        return pl.Series(self.key, [r.key for r in rs], dtype=self.key_dtype, strict=False)

    def ok(self, rs: Sequence[RowResult]) -> pl.DataFrame:
        instances = [r.instance for r in rs if r.instance is not None]
        fields = to_frame(instances, self.columns)
        return (
            pl.DataFrame([self._keys(rs)])
            .hstack(fields)
            .hstack(list(self._provenance(rs, PROVENANCE, "ok").values()))
        )

    def failed(self, rs: Sequence[RowResult]) -> pl.DataFrame:
        return pl.DataFrame([self._keys(rs), *self._provenance(rs, ERROR_COLUMNS, None).values()])


class DuckDBSink:
    """Writes `<table>`, `<table>_errors` and `_extract_runs` into a DuckDB file."""

    def __init__(
        self,
        path: Path,
        table: str,
        *,
        key: str,
        key_type: str,
        columns: list[Column],
        seed: int,
        run_id: str,
        schema_hash: str,
    ):
        self.path = path
        self.table = table
        self.errors_table = f"{table}_errors"
        self.key = key
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.con = duckdb.connect(str(path))
        except (OSError, duckdb.Error) as e:
            raise SinkError(
                f"{path}: cannot open the output database ({_first_line(e)})", path=str(path)
            ) from e
        self.frames = _Frames(key, None, columns, seed, run_id, schema_hash)
        key_col = f"{_ident(key)} {key_type}"
        results_ddl = ", ".join(
            [key_col, columns_ddl(columns), *(f"{_ident(n)} {t}" for n, t, _ in PROVENANCE)]
        )
        errors_ddl = ", ".join([key_col, *(f"{_ident(n)} {t}" for n, t, _ in ERROR_COLUMNS)])
        self._ensure(table, results_ddl)
        self._ensure(self.errors_table, errors_ddl)
        self._ensure("_extract_runs", RUN_COLUMNS)

    def _ensure(self, table: str, ddl: str) -> None:
        """Create the table, or check that an existing one has exactly these columns."""
        try:
            self.con.execute(f"CREATE TABLE IF NOT EXISTS {_ident(table)} ({ddl})")
            self.con.execute(f"CREATE TEMP TABLE __expected ({ddl.replace(' PRIMARY KEY', '')})")
            want = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = '__expected' ORDER BY ordinal_position"
            ).fetchall()
            have = self.con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
                [table],
            ).fetchall()
            self.con.execute("DROP TABLE __expected")
        except duckdb.Error as e:
            raise SinkError(
                f"{self.path}: cannot create table {table!r} ({_first_line(e)})",
                path=str(self.path),
            ) from e
        if want != have:
            diff = sorted(set(want) ^ set(have))[:3]
            raise SinkError(
                f"{self.path}: table {table!r} exists with other columns than this pipeline writes "
                f"(e.g. {', '.join(f'{n} {t}' for n, t in diff)}); "
                "write to another table or drop it",
                path=str(self.path),
            )

    def write(self, results: Sequence[RowResult]) -> None:
        ok = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        try:
            self.con.execute("BEGIN")
            keys = pl.DataFrame([self.frames._keys(results)])
            self.con.register("__keys", keys)
            for table in (self.table, self.errors_table):
                self.con.execute(
                    f"DELETE FROM {_ident(table)} WHERE {_ident(self.key)} IN "
                    f"(SELECT {_ident(self.key)} FROM __keys)"
                )
            self.con.unregister("__keys")
            for table, rows, build in (
                (self.table, ok, self.frames.ok),
                (self.errors_table, failed, self.frames.failed),
            ):
                if rows:
                    self.con.register("__batch", build(rows))
                    self.con.execute(f"INSERT INTO {_ident(table)} BY NAME SELECT * FROM __batch")
                    self.con.unregister("__batch")
            self.con.execute("COMMIT")
        except duckdb.Error as e:
            self.con.execute("ROLLBACK")
            raise SinkError(
                f"{self.path}: writing to {self.table!r} failed ({_first_line(e)})",
                path=str(self.path),
            ) from e

    def finish(self, summary: RunSummary) -> None:
        record = summary.record()
        names = ", ".join(_ident(k) for k in record)
        marks = ", ".join("?" for _ in record)
        self.con.execute(
            f"INSERT OR REPLACE INTO _extract_runs ({names}) VALUES ({marks})",
            list(record.values()),
        )

    def close(self) -> None:
        self.con.close()


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, default=str, ensure_ascii=False)


class FileSink:
    """Parquet or CSV: `<path>` results, `<stem>_errors.<ext>` failures, `<stem>_runs.jsonl` runs.

    Files are written to a temporary name and moved into place when the run ends, so a reader
    never sees a half-written file. CSV flattens nested columns to JSON text.
    """

    def __init__(
        self,
        path: Path,
        kind: str,
        *,
        key: str,
        columns: list[Column],
        seed: int,
        run_id: str,
        schema_hash: str,
    ):
        self.kind = kind
        self.path = path
        self.errors_path = path.with_name(f"{path.stem}_errors{path.suffix}")
        self.runs_path = path.with_name(f"{path.stem}_runs.jsonl")
        self.frames = _Frames(key, None, columns, seed, run_id, schema_hash)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise SinkError(
                f"{path.parent}: cannot create the output folder ({e.strerror})", path=str(path)
            ) from e
        self._writers: dict[Path, Any] = {}
        self._schemas: dict[Path, pa.Schema] = {}

    def _tmp(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.partial")

    def _append(self, path: Path, frame: pl.DataFrame) -> None:
        tmp = self._tmp(path)
        if self.kind == "parquet":
            table = frame.to_arrow()
            if path not in self._writers:
                self._schemas[path] = table.schema
                self._writers[path] = pq.ParquetWriter(str(tmp), table.schema)
            self._writers[path].write_table(table.cast(self._schemas[path]))
            return
        nested = [n for n, d in frame.schema.items() if d.is_nested() or isinstance(d, pl.Object)]
        if nested:
            frame = frame.with_columns(
                pl.Series(n, [_json_text(v) for v in frame[n].to_list()], dtype=pl.String())
                for n in nested
            )
        first = path not in self._writers
        if first:
            self._writers[path] = tmp.open("w", encoding="utf-8", newline="")
        frame.write_csv(self._writers[path], include_header=first)

    def write(self, results: Sequence[RowResult]) -> None:
        ok = [r for r in results if r.ok]
        failed = [r for r in results if not r.ok]
        try:
            if ok:
                self._append(self.path, self.frames.ok(ok))
            if failed:
                self._append(self.errors_path, self.frames.failed(failed))
        except OSError as e:
            raise SinkError(f"{self.path}: cannot write ({e.strerror})", path=str(self.path)) from e

    def finish(self, summary: RunSummary) -> None:
        for path, writer in self._writers.items():
            writer.close()
            os.replace(self._tmp(path), path)
        self._writers.clear()
        with self.runs_path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(summary.record(), default=str) + "\n")

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()


def open_sink(
    kind: str,
    path: Path,
    table: str,
    *,
    key: str,
    key_type: str,
    columns: list[Column],
    seed: int,
    run_id: str,
    schema_hash: str,
) -> Sink:
    """Open the configured output, creating (or checking) its tables."""
    if kind == "duckdb":
        return DuckDBSink(
            path,
            table,
            key=key,
            key_type=key_type,
            columns=columns,
            seed=seed,
            run_id=run_id,
            schema_hash=schema_hash,
        )
    return FileSink(
        path, kind, key=key, columns=columns, seed=seed, run_id=run_id, schema_hash=schema_hash
    )
