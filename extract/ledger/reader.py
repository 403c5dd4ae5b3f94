"""Reading the ledger: what it already holds for a batch of rows, past runs, failed rows, usage.

Every query here decodes its rows by column name. The CLI and `plan` read through this class
(opened read-only by `open_reader`); a run reads through it on its own connection.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ..errors import SinkError
from ..results import RowResult
from ..schema import CompiledSchema
from ..sql import first_line, ident
from ..transport.base import Usage
from .tables import CACHE_TABLE, RUNS_TABLE

__all__ = ["Known", "LedgerReader", "Observed", "classify", "open_reader"]


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


@dataclass(frozen=True)
class Observed:
    """Mean output of earlier rows of one schema: what `plan` estimates from."""

    rows: int
    output_tokens: float
    reasoning_tokens: float


def _bounds(keys: Sequence[Any]) -> tuple[Any, Any]:
    """The smallest and largest of the batch's keys, when they are of one orderable type."""
    try:
        kinds = {type(k) for k in keys}
        if len(kinds) != 1 or not kinds <= {int, str, float}:
            return None, None
        return min(keys), max(keys)
    except TypeError:
        return None, None


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


class LedgerReader:
    """Queries over a ledger connection for the pipeline writing `table` keyed by `key`."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        table: str,
        *,
        key: str,
        compiled: CompiledSchema | None = None,
    ):
        self.con = con
        self.table = table
        self.errors_table = f"{table}_errors"
        self.key = key
        self.compiled = compiled

    def is_empty(self) -> bool:
        """True when neither results, errors nor cache hold a row."""
        return not any(
            self.con.execute(f"SELECT EXISTS (FROM {ident(t)})").fetchall()[0][0]
            for t in (self.table, self.errors_table, CACHE_TABLE)
        )

    def lookup(
        self, keys: Sequence[Any], request_hashes: Sequence[str | None], cache: bool = True
    ) -> list[Known]:
        """For each (key, request hash), what the ledger already holds (the cached answers too,
        unless `cache` is False: see `cached`).

        Work per batch, not per output row: each table is filtered by the batch's keys, and by
        their range as well, so that DuckDB skips every row group whose keys lie outside it
        (the output is written in source order, so a batch's keys sit in a few row groups). The
        cache, keyed by random hashes, is asked only for the rows of the batch that are neither
        done nor failed: an incremental run over a large output barely touches it.
        """
        import pyarrow as pa

        n = len(keys)
        if n == 0:
            return []
        frame = pa.table(
            {
                "i": pa.array(range(n), type=pa.int64()),
                "k": list(keys),
                "h": pa.array(list(request_hashes), type=pa.string()),
            }
        )
        k = ident(self.key)
        low, high = _bounds(keys)
        within = f"{k} BETWEEN ? AND ? AND " if low is not None else ""
        bounds = [low, high] * 2 if low is not None else []
        self.con.register("__lookup", frame)
        try:
            rows = _dicts(
                self.con.execute(
                    f"""
                    SELECT l.i AS i,
                           r._request_hash = l.h AS done,
                           e._request_hash = l.h AS failed,
                           e.{k} IS NOT NULL AS in_errors,
                           r.{k} IS NOT NULL OR e.{k} IS NOT NULL AS present
                    FROM __lookup l
                    LEFT JOIN (
                        SELECT {k}, _request_hash FROM {ident(self.table)}
                        WHERE {within}{k} IN (SELECT k FROM __lookup)
                    ) r ON r.{k} = l.k
                    LEFT JOIN (
                        SELECT {k}, _request_hash FROM {ident(self.errors_table)}
                        WHERE {within}{k} IN (SELECT k FROM __lookup)
                    ) e ON e.{k} = l.k
                    """,
                    bounds,
                )
            )
            out = [Known() for _ in range(n)]
            for row in rows:
                known = out[row["i"]]
                known.done, known.failed = bool(row["done"]), bool(row["failed"])
                known.in_errors, known.exists = bool(row["in_errors"]), bool(row["present"])
            if cache and self.compiled is not None:
                self._lookup_cache(out, keys, request_hashes)
        finally:
            self.con.unregister("__lookup")
        return out

    def cached(
        self, keys: Sequence[Any], request_hashes: Sequence[str | None], exists: Sequence[bool]
    ) -> list[RowResult | None]:
        """The validated answer the cache holds for each request hash (None: none), as the
        row of that key (`exists`: the output holds a row of that key already)."""
        out = [Known(exists=e) for e in exists]
        if self.compiled is not None:
            self._lookup_cache(out, keys, request_hashes)
        return [known.cached for known in out]

    def _lookup_cache(
        self, out: list[Known], keys: Sequence[Any], request_hashes: Sequence[str | None]
    ) -> None:
        """Fill `cached` for the rows neither done nor failed, from `_extract_cache`."""
        import pyarrow as pa

        wanted = [
            i for i, known in enumerate(out)
            if not known.done and not known.failed and request_hashes[i] is not None
        ]  # fmt: skip
        if not wanted:
            return
        hashes = pa.table({"h": pa.array([request_hashes[i] for i in wanted], type=pa.string())})
        self.con.register("__hashes", hashes)
        try:
            rows = _dicts(
                self.con.execute(
                    f"SELECT * FROM {CACHE_TABLE} WHERE request_hash IN (SELECT h FROM __hashes)"
                )
            )
        finally:
            self.con.unregister("__hashes")
        by_hash = {row["request_hash"]: row for row in rows}
        for i in wanted:
            row = by_hash.get(request_hashes[i])
            if row is not None and row["output"] is not None:
                out[i].cached = self._cached(row, keys[i], out[i].exists)

    def _cached(self, row: dict[str, Any], key: Any, exists: bool) -> RowResult:
        assert self.compiled is not None
        trust = json.loads(row["trust"]) if row.get("trust") else {}
        return RowResult(
            key=key,
            prompt_hash="",
            request_hash=row["request_hash"],
            instance=self.compiled.model.model_validate_json(row["output"]),
            model=row["model"],
            provider=row["provider"],
            finish_reason=row["finish_reason"],
            attempts=row["attempts"],
            requests=row["requests"],
            usage=Usage(
                row["prompt_tokens"],
                row["completion_tokens"],
                row["reasoning_tokens"],
                row["cached_tokens"],
                row["cost_usd"],
            ),
            latency_ms=row["latency_ms"],
            run_id=row["run_id"],
            replaces=exists,
            from_cache=True,
            confidence=trust.get("confidence"),
            margins=trust.get("margins"),
            min_confidence=trust.get("min_confidence"),
            parts=row.get("parts") or 1,
        )

    def observed(self, schema_hash: str) -> Observed | None:
        """Mean output and reasoning tokens of earlier results of this schema, if any."""
        row = _dicts(
            self.con.execute(
                "SELECT count(*) AS n, avg(_completion_tokens - _reasoning_tokens) AS output, "
                f"avg(_reasoning_tokens) AS reasoning FROM {ident(self.table)} "
                "WHERE _schema_hash = ?",
                [schema_hash],
            )
        )[0]
        if not row["n"]:
            return None
        return Observed(row["n"], float(row["output"] or 0), float(row["reasoning"] or 0))

    def runs(self, last: int = 20) -> list[dict[str, Any]]:
        """The latest runs that wrote this table, newest first."""
        return self._read(
            "SELECT run_id, status, rows_total, rows_ok, rows_failed, rows_cached, rows_skipped, "
            "requests, prompt_tokens + completion_tokens AS tokens, "
            "round(cost_usd, 6) AS cost_usd, "
            "round(epoch(ended_at) - epoch(started_at), 1) AS seconds, stop_reason "
            f"FROM {RUNS_TABLE} WHERE table_name = ? ORDER BY started_at DESC LIMIT ?",
            [self.table, last],
        )

    def batches(self, last: int = 20) -> list[dict[str, Any]]:
        """The latest batches (run.mode batch) of this table, newest first."""
        from ..batch.store import BATCHES_TABLE

        present = self.con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [BATCHES_TABLE]
        ).fetchall()[0][0]
        if not present:
            return []
        return self._read(
            "SELECT batch_id, status, requests, completed, failed, round(cost_usd, 6) AS cost_usd, "
            "prompt_tokens + completion_tokens AS tokens, "
            "strftime(to_timestamp(created_after), '%Y-%m-%d %H:%M:%S') AS created, "
            "strftime(finished_at, '%Y-%m-%d %H:%M:%S') AS finished, collected, error, batch_key "
            f"FROM {BATCHES_TABLE} WHERE table_name = ? ORDER BY created_after DESC LIMIT ?",
            [self.table, last],
        )

    def errors(self, limit: int = 50) -> list[dict[str, Any]]:
        """The rows of the errors table, latest first."""
        return self._read(
            f"SELECT {ident(self.key)}, _error_class, _message, _attempts, _requests, _raw_output "
            f"FROM {ident(self.errors_table)} ORDER BY _extracted_at DESC LIMIT ?",
            [limit],
        )

    def _read(self, sql: str, params: list[Any]) -> list[dict[str, Any]]:
        try:
            return _dicts(self.con.execute(sql, params))
        except duckdb.Error as e:
            raise SinkError(f"{self.table}: cannot read the output ({first_line(e)})") from e


def open_reader(
    path: Path, table: str, *, key: str, compiled: CompiledSchema | None = None
) -> LedgerReader:
    """A reader over the ledger file at `path`, opened read-only (close `.con` when done)."""
    from .store import connect

    if not path.exists():
        raise SinkError(f"{path}: no output yet (run the pipeline first)", path=str(path))
    return LedgerReader(connect(path, read_only=True), table, key=key, compiled=compiled)
