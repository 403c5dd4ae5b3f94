"""The ledger: one DuckDB file that makes runs exactly-once, resumable and incremental.

It holds, for a pipeline writing table T:
- `T`: one row per key with its typed fields and provenance (`_request_hash` says which request
  produced it);
- `T_errors`: one row per key that failed for good, with its reason and last output;
- `_extract_cache`: validated outputs by request hash (model, messages, schema, seed, sampling);
  bad outputs are never cached;
- `_extract_runs`: one row per run.

Durability: every finished row is appended to the journal (extract/journal.py) in the event-loop
turn it finishes in, and journaled rows are folded into the tables in one transaction per batch,
in a writer thread. After `kill -9` the next open replays the journal, so only requests in flight
are lost. A key's new row replaces its old one in `T` and `T_errors` alike: replay is idempotent.

Locking: DuckDB holds an exclusive lock on the file while a run has it open; a second run on the
same output fails at once with a SinkError.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from .client import Usage
from .columns import Column, columns_ddl, insert_select, to_frame
from .errors import SinkError
from .journal import Journal
from .results import RowResult, RunSummary
from .schema import CompiledSchema

__all__ = ["Known", "Ledger", "classify"]

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
    ("_request_hash", "VARCHAR", pl.String()),
    ("_schema_hash", "VARCHAR", pl.String()),
    ("_extracted_at", "TIMESTAMPTZ", pl.Datetime("us", "UTC")),
]

ERROR_COLUMNS: list[tuple[str, str, pl.DataType]] = [
    ("_error_class", "VARCHAR", pl.String()),
    ("_message", "VARCHAR", pl.String()),
    ("_raw_output", "VARCHAR", pl.String()),
    *[c for c in PROVENANCE if c[0] != "_status"],
]

#: how each per-row provenance column is read off a RowResult
_FIELDS: dict[str, Callable[[RowResult], Any]] = {
    "_model": lambda r: r.model,
    "_provider": lambda r: r.provider,
    "_attempts": lambda r: r.attempts,
    "_requests": lambda r: r.requests,
    "_prompt_tokens": lambda r: r.usage.prompt_tokens,
    "_completion_tokens": lambda r: r.usage.completion_tokens,
    "_reasoning_tokens": lambda r: r.usage.reasoning_tokens,
    "_cached_tokens": lambda r: r.usage.cached_tokens,
    "_cost_usd": lambda r: r.usage.cost_usd,
    "_latency_ms": lambda r: round(r.latency_ms, 3),
    "_finish_reason": lambda r: r.finish_reason,
    "_run_id": lambda r: r.run_id,
    "_prompt_hash": lambda r: r.prompt_hash,
    "_request_hash": lambda r: r.request_hash,
    "_extracted_at": lambda r: r.finished_at,
    "_error_class": lambda r: r.error_class,
    "_message": lambda r: r.message,
    "_raw_output": lambda r: r.raw_output,
}

CACHE_COLUMNS = """
    request_hash VARCHAR, output VARCHAR, model VARCHAR, provider VARCHAR,
    finish_reason VARCHAR, attempts INTEGER, requests INTEGER, prompt_tokens BIGINT,
    completion_tokens BIGINT, reasoning_tokens BIGINT, cached_tokens BIGINT, cost_usd DOUBLE,
    latency_ms DOUBLE, run_id VARCHAR, extracted_at TIMESTAMPTZ
"""

#: the provenance kept with a cached output (cache column = provenance column less its "_")
_CACHED: list[tuple[str, pl.DataType]] = [
    (name[1:], dtype)
    for name, _, dtype in PROVENANCE
    if name not in ("_status", "_seed", "_schema_hash", "_prompt_hash", "_request_hash")
]

RUN_COLUMNS = """
    run_id VARCHAR PRIMARY KEY, pipeline VARCHAR, config_hash VARCHAR, schema_hash VARCHAR,
    model VARCHAR, output VARCHAR, table_name VARCHAR, status VARCHAR, stop_reason VARCHAR,
    rows_total BIGINT, rows_ok BIGINT, rows_failed BIGINT, rows_cached BIGINT,
    rows_skipped BIGINT, rows_not_processed BIGINT, requests BIGINT, prompt_tokens BIGINT,
    completion_tokens BIGINT, reasoning_tokens BIGINT, cached_tokens BIGINT, cost_usd DOUBLE,
    started_at TIMESTAMPTZ, ended_at TIMESTAMPTZ
"""


#: DuckDB's buffer pool for the output file: enough for a batch, flat for any number of rows
MEMORY_LIMIT = "48MB"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _no_pk(ddl: str) -> str:
    return ddl.replace(" PRIMARY KEY", "")


def _first_line(e: BaseException) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


@dataclass(slots=True)
class Known:
    """What the ledger already holds for one source row."""

    done: bool = False  # T has this key with the same request hash
    failed: bool = False  # T_errors has this key with the same request hash
    in_errors: bool = False  # T_errors has this key, with any hash
    exists: bool = False  # T or T_errors has this key: writing it replaces a row
    cached: RowResult | None = None  # a validated output for this exact request


def classify(known: Known, *, full_refresh: bool = False, retry_errors: bool = False) -> str:
    """What a run does with a row: "skip" (done), "failed" (failed before for this very request:
    skipped), "cached" (answered from the cache) or "todo" (requested)."""
    if retry_errors and not known.in_errors:
        return "skip"
    if full_refresh:
        return "todo"
    if known.done:
        return "skip"
    if known.failed and not retry_errors:
        return "failed"
    return "cached" if known.cached is not None else "todo"


class Ledger:
    """The output DuckDB file of a pipeline, opened for one run."""

    def __init__(
        self,
        path: Path,
        table: str,
        *,
        key: str,
        key_type: str,
        columns: list[Column],
        compiled: CompiledSchema,
        seed: int,
    ):
        self.path = path
        self.table = table
        self.errors_table = f"{table}_errors"
        self.key = key
        self.columns = columns
        self.compiled = compiled
        self.seed = seed
        self.journal = Journal(path)
        #: --full-refresh: a fresh answer replaces the cached one of its request
        self.replace_cache = False
        self._select = insert_select(columns)
        #: tables renamed out of the way because their columns no longer match the schema
        self.archived: list[str] = []
        self.con = self._connect(path)
        try:
            key_col = f"{_ident(key)} {key_type}"
            self._ensure(
                table,
                ", ".join(
                    [key_col, columns_ddl(columns), *(f"{_ident(n)} {t}" for n, t, _ in PROVENANCE)]
                ),
                archive=True,
            )
            self._ensure(
                self.errors_table,
                ", ".join([key_col, *(f"{_ident(n)} {t}" for n, t, _ in ERROR_COLUMNS)]),
                archive=True,
            )
            self._ensure("_extract_cache", CACHE_COLUMNS)
            self._ensure("_extract_runs", RUN_COLUMNS)
            # Rows a killed run had finished but not yet written.
            self._write(self.journal.replay(compiled.model))
            self.journal.remove_all()
            #: nothing to look up: a first run skips the per-batch lookups altogether
            self.empty = not any(
                self.con.execute(f"SELECT EXISTS (FROM {_ident(t)})").fetchall()[0][0]
                for t in (table, self.errors_table, "_extract_cache")
            )
            self.con.execute(
                "UPDATE _extract_runs SET status = 'killed', stop_reason = "
                "'the process ended without closing the run' WHERE status = 'running'"
            )
        except BaseException:
            self.con.close()
            raise
        self._buffer: list[RowResult] = []

    @staticmethod
    def _connect(path: Path) -> duckdb.DuckDBPyConnection:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # DuckDB would otherwise keep up to 80% of RAM of table blocks cached: memory that
            # grows with the output. Past the limit it evicts them (they are on disk anyway).
            return duckdb.connect(str(path), config={"memory_limit": MEMORY_LIMIT})
        except duckdb.IOException as e:
            held = re.search(r"PID (\d+)", str(e))
            if "lock" in str(e).lower():
                who = f" (process {held.group(1)})" if held else ""
                raise SinkError(
                    f"{path}: another extract run is writing this output{who}; "
                    "wait for it to finish or write elsewhere",
                    path=str(path),
                ) from e
            raise SinkError(
                f"{path}: cannot open the output ({_first_line(e)})", path=str(path)
            ) from e
        except (OSError, duckdb.Error) as e:
            raise SinkError(
                f"{path}: cannot open the output ({_first_line(e)})", path=str(path)
            ) from e

    def _ensure(self, table: str, ddl: str, *, archive: bool = False) -> None:
        """Create the table, or check that an existing one has exactly these columns.

        With `archive`, a table of other columns (the schema changed) is renamed out of the way,
        `<table>__before_<time>`, and a new one is created: nothing is dropped, and every row is
        requested again since its request hash changed with the schema.
        """
        query = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_catalog = ? AND table_schema = 'main' "
            "ORDER BY ordinal_position"
        )
        try:
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE __expected ({_no_pk(ddl)})")
            want = self.con.execute(query, ["__expected", "temp"]).fetchall()
            self.con.execute("DROP TABLE __expected")
            database = self.con.execute("SELECT current_database()").fetchall()[0][0]
            have = self.con.execute(query, [table, database]).fetchall()
            if have and have != want and archive:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
                old = f"{table}__before_{stamp}"
                self.con.execute(f"ALTER TABLE {_ident(table)} RENAME TO {_ident(old)}")
                self.archived.append(old)
                have = []
            if not have:
                self.con.execute(f"CREATE TABLE {_ident(table)} ({ddl})")
                return
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

    # ------------------------------------------------------------------ reading what is known

    def lookup(self, keys: Sequence[Any], request_hashes: Sequence[str | None]) -> list[Known]:
        """For each (key, request hash), what the ledger already holds. One query per batch.

        Each table is first filtered by the batch's keys (a semi join built on the batch), so
        the work and memory stay those of a batch, however large the output grows.
        """
        n = len(keys)
        if n == 0:
            return []
        frame = pl.DataFrame(
            {
                "i": pl.Series(range(n), dtype=pl.Int64()),
                "k": pl.Series(list(keys), strict=False),
                "h": pl.Series(list(request_hashes), dtype=pl.String()),
            }
        )
        k = _ident(self.key)
        self.con.register("__lookup", frame)
        try:
            rows = self.con.execute(
                f"""
                SELECT l.i, r._request_hash = l.h, e._request_hash = l.h, e.{k} IS NOT NULL,
                       r.{k} IS NOT NULL OR e.{k} IS NOT NULL,
                       c.output, c.model, c.provider, c.finish_reason, c.attempts, c.requests,
                       c.prompt_tokens, c.completion_tokens, c.reasoning_tokens, c.cached_tokens,
                       c.cost_usd, c.latency_ms, c.run_id
                FROM __lookup l
                LEFT JOIN (
                    SELECT {k}, _request_hash FROM {_ident(self.table)}
                    WHERE {k} IN (SELECT k FROM __lookup)
                ) r ON r.{k} = l.k
                LEFT JOIN (
                    SELECT {k}, _request_hash FROM {_ident(self.errors_table)}
                    WHERE {k} IN (SELECT k FROM __lookup)
                ) e ON e.{k} = l.k
                LEFT JOIN (
                    SELECT * FROM _extract_cache WHERE request_hash IN (SELECT h FROM __lookup)
                ) c ON c.request_hash = l.h
                """
            ).fetchall()
        finally:
            self.con.unregister("__lookup")
        out = [Known() for _ in range(n)]
        for row in rows:
            i, done, failed, in_errors, exists, output = row[:6]
            known = out[i]
            known.done, known.failed, known.in_errors = bool(done), bool(failed), bool(in_errors)
            known.exists = bool(exists)
            if output is not None:
                known.cached = RowResult(
                    key=keys[i],
                    prompt_hash="",
                    request_hash=request_hashes[i] or "",
                    instance=self.compiled.model.model_validate_json(output),
                    model=row[6],
                    provider=row[7],
                    finish_reason=row[8],
                    attempts=row[9],
                    requests=row[10],
                    usage=Usage(row[11], row[12], row[13], row[14], row[15]),
                    latency_ms=row[16],
                    run_id=row[17],
                    replaces=known.exists,
                    from_cache=True,
                )
        return out

    # ------------------------------------------------------------------ writing

    def record(self, result: RowResult) -> None:
        """Journal one finished row (durable at the next `sync`) and buffer it for a batch."""
        self.journal.append(result)
        self._buffer.append(result)

    def sync(self) -> None:
        self.journal.sync()

    @property
    def pending(self) -> int:
        return len(self._buffer)

    def take(self) -> tuple[list[RowResult], Path | None] | None:
        """Hand over the buffered rows and their closed journal segment, for `commit`."""
        if not self._buffer:
            return None
        batch, self._buffer = self._buffer, []
        return batch, self.journal.rotate()

    def commit(self, batch: list[RowResult], segment: Path | None) -> None:
        """Write a batch in one transaction, then drop its journal segment. Thread-safe against
        `record`; the ledger's own queries must not run at the same time (one writer thread)."""
        self._write(batch)
        if segment is not None:
            segment.unlink(missing_ok=True)

    def flush(self) -> None:
        """Commit whatever is buffered, now."""
        taken = self.take()
        if taken is not None:
            self.commit(*taken)

    def _write(self, results: Sequence[RowResult]) -> None:
        if not results:
            return
        ok = [r for r in results if r.instance is not None]
        failed = [r for r in results if r.instance is None]
        fresh = [r for r in ok if not r.from_cache]
        k = _ident(self.key)
        try:
            self.con.execute("BEGIN")
            # Only keys the ledger already holds need deleting: a first run scans nothing here.
            replacing = [r for r in results if r.replaces]
            if replacing:
                self.con.register("__keys", pl.DataFrame([self._keys(replacing)]))
                for table in (self.table, self.errors_table):
                    self.con.execute(
                        f"DELETE FROM {_ident(table)} WHERE {k} IN (SELECT {k} FROM __keys)"
                    )
                self.con.unregister("__keys")
            if ok:
                self.con.register("__batch", self._ok_frame(ok))
                self.con.execute(
                    f"INSERT INTO {_ident(self.table)} BY NAME SELECT {self._select} FROM __batch"
                )
                self.con.unregister("__batch")
            if failed:
                self.con.register("__batch", self._failed_frame(failed))
                self.con.execute(
                    f"INSERT INTO {_ident(self.errors_table)} BY NAME SELECT * FROM __batch"
                )
                self.con.unregister("__batch")
            if fresh:
                # No key on the cache: an index would live in memory and grow with every row.
                # A request is answered again only under --full-refresh, which replaces it.
                self.con.register("__batch", self._cache_frame(fresh))
                if self.replace_cache:
                    self.con.execute(
                        "DELETE FROM _extract_cache WHERE request_hash IN "
                        "(SELECT request_hash FROM __batch)"
                    )
                self.con.execute("INSERT INTO _extract_cache BY NAME SELECT * FROM __batch")
                self.con.unregister("__batch")
            self.con.execute("COMMIT")
        except duckdb.Error as e:
            self.con.execute("ROLLBACK")
            raise SinkError(
                f"{self.path}: writing to {self.table!r} failed ({_first_line(e)})",
                path=str(self.path),
            ) from e

    def start_run(self, summary: RunSummary) -> None:
        self._save_run(summary)

    def finish_run(self, summary: RunSummary) -> None:
        self.flush()
        self._save_run(summary)

    def _save_run(self, summary: RunSummary) -> None:
        record = summary.record()
        names = ", ".join(_ident(k) for k in record)
        marks = ", ".join("?" for _ in record)
        self.con.execute(
            f"INSERT OR REPLACE INTO _extract_runs ({names}) VALUES ({marks})",
            list(record.values()),
        )

    def close(self) -> None:
        self.journal.close()
        self.con.close()

    # ------------------------------------------------------------------ frames

    def _keys(self, rs: Sequence[RowResult]) -> pl.Series:
        return pl.Series(self.key, [r.key for r in rs], strict=False)

    def _provenance(
        self, rs: Sequence[RowResult], spec: list[tuple[str, str, pl.DataType]], status: str | None
    ) -> list[pl.Series]:
        constant = {"_status": status, "_seed": self.seed, "_schema_hash": self.compiled.hash}
        return [
            pl.Series(name, [constant[name]] * len(rs), dtype=dtype)
            if name in constant
            else pl.Series(name, [_FIELDS[name](r) for r in rs], dtype=dtype)
            for name, _, dtype in spec
        ]

    def _ok_frame(self, rs: Sequence[RowResult]) -> pl.DataFrame:
        fields = to_frame([r.instance for r in rs if r.instance is not None], self.columns)
        return (
            pl.DataFrame([self._keys(rs)])
            .hstack(fields)
            .hstack(self._provenance(rs, PROVENANCE, "ok"))
        )

    def _failed_frame(self, rs: Sequence[RowResult]) -> pl.DataFrame:
        return pl.DataFrame([self._keys(rs), *self._provenance(rs, ERROR_COLUMNS, None)])

    def _cache_frame(self, rs: Sequence[RowResult]) -> pl.DataFrame:
        # The cache's columns are the provenance's, without the leading underscore.
        output = [r.instance.model_dump_json() if r.instance is not None else None for r in rs]
        return pl.DataFrame(
            [
                pl.Series("request_hash", [r.request_hash for r in rs], dtype=pl.String()),
                pl.Series("output", output, dtype=pl.String()),
                *(
                    pl.Series(name, [_FIELDS[f"_{name}"](r) for r in rs], dtype=dtype)
                    for name, dtype in _CACHED
                ),
            ]
        )
