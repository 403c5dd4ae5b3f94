"""Reading a pipeline's output for the report: runs, counts, errors, fill rates, confidence and
evaluations, each query decoded by column name into the values of `facts.py`.

The output may come from an older version of extract (no trust columns, no evaluation tables):
`Catalog` says which tables and columns exist, every query selects only those (a missing one
reads as NULL), and what is missing is reported instead of failing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from duckdb.sqltypes import DuckDBPyType

from ..errors import SinkError
from ..ledger.tables import PROVENANCE, RUNS_TABLE
from ..sql import first_line, ident, literal
from ..trust.shape import Fields, Items, Leaf, Shape
from .facts import (
    Calibration,
    CalibrationBin,
    Counts,
    ErrorClass,
    Evaluation,
    FieldAccuracy,
    FieldFill,
    Histogram,
    RunInfo,
)

__all__ = [
    "TRUST_COLUMNS",
    "Catalog",
    "all_runs",
    "error_classes",
    "evaluation",
    "fill_rates",
    "histogram",
    "in_tables",
    "latest_run",
    "rows",
    "schema_fields",
    "type_shape",
]

#: the columns the runner writes after the schema's own (trust/columns.py)
TRUST_COLUMNS = ("_confidence", "_min_confidence", "_margins", "_grounding", "_ungrounded")
_NOT_FIELDS = frozenset(TRUST_COLUMNS) | {c.name for c in PROVENANCE}
#: a grounding leaf: STRUCT(status, "column", start, "end")
GROUNDING_KEYS = frozenset({"status", "column", "start", "end"})


def rows(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()
) -> list[dict[str, Any]]:
    """The rows of a query as mappings by column name; SinkError when it fails."""
    try:
        cursor = con.execute(sql, list(params))
        names = [d[0] for d in cursor.description or []]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except duckdb.Error as e:
        raise SinkError(f"cannot read the output for the report ({first_line(e)})") from e


@dataclass(frozen=True)
class Catalog:
    """The tables of an output file and their columns' types, read once."""

    tables: dict[str, dict[str, DuckDBPyType]]

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, names: Iterable[str]) -> Catalog:
        """The catalog of the tables `names` (those that exist)."""
        present = {
            r["table_name"]
            for r in rows(
                con,
                "SELECT table_name FROM duckdb_tables() "
                "WHERE database_name = current_database() AND schema_name = 'main'",
            )
        }
        tables: dict[str, dict[str, DuckDBPyType]] = {}
        for name in names:
            if name in present:
                relation = con.sql(f"SELECT * FROM {ident(name)}")
                tables[name] = dict(zip(relation.columns, relation.dtypes, strict=True))
        return cls(tables)

    def has(self, table: str, column: str | None = None) -> bool:
        columns = self.tables.get(table)
        return columns is not None and (column is None or column in columns)

    def select(self, table: str, names: Iterable[str]) -> str:
        """A select list of `names`: the column where `table` has it, else NULL under its name
        (older outputs lack some columns; a query should not fail for that)."""
        return ", ".join(ident(n) if self.has(table, n) else f"NULL AS {ident(n)}" for n in names)


def schema_fields(catalog: Catalog, table: str, key: str) -> list[tuple[str, DuckDBPyType]]:
    """The table's columns that hold the schema's fields: not the key, trust or provenance."""
    columns = catalog.tables.get(table, {})
    return [(n, t) for n, t in columns.items() if n != key and n not in _NOT_FIELDS]


def type_shape(kind: DuckDBPyType) -> Shape:
    """The shape of a column type: STRUCTs are models, LISTs lists, anything else one value."""
    if kind.id == "struct":
        return Fields(
            tuple(
                (name, type_shape(child))
                for name, child in kind.children
                if isinstance(child, DuckDBPyType)
            )
        )
    if kind.id == "list":
        child = kind.children[0][1]
        return Items(type_shape(child)) if isinstance(child, DuckDBPyType) else Leaf("value")
    return Leaf(kind.id)


# ---------------------------------------------------------------------- runs and counts

_RUN_FIELDS = [
    "run_id", "status", "stop_reason", "model", "rows_ok", "rows_failed", "rows_cached",
    "rows_skipped", "requests", "prompt_tokens", "completion_tokens", "cost_usd", "started_at",
    "ended_at",
]  # fmt: skip


def _counts(row: dict[str, Any]) -> Counts:
    def num(name: str) -> int | None:
        value = row.get(name)
        return None if value is None else int(value)

    cost = row.get("cost_usd")
    return Counts(
        rows_ok=num("rows_ok"),
        rows_failed=num("rows_failed"),
        rows_cached=num("rows_cached"),
        rows_skipped=num("rows_skipped"),
        requests=num("requests"),
        prompt_tokens=num("prompt_tokens"),
        completion_tokens=num("completion_tokens"),
        cost_usd=None if cost is None else float(cost),
    )


def latest_run(con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str) -> RunInfo | None:
    """The run that started last among those that wrote `table`."""
    if not catalog.has(RUNS_TABLE, "table_name"):
        return None
    found = rows(
        con,
        f"SELECT {catalog.select(RUNS_TABLE, _RUN_FIELDS)} FROM {RUNS_TABLE} "
        "WHERE table_name = ? ORDER BY started_at DESC NULLS LAST LIMIT 1",
        [table],
    )
    if not found:
        return None
    row = found[0]
    return RunInfo(
        run_id=str(row["run_id"]),
        status=str(row["status"] or "unknown"),
        stop_reason=row["stop_reason"],
        model=row["model"],
        started_at=row["started_at"],
        ended_at=row["ended_at"],
        counts=_counts(row),
    )


def all_runs(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str
) -> tuple[Counts | None, int]:
    """The sums over every run that wrote `table`, and how many runs there were."""
    if not catalog.has(RUNS_TABLE, "table_name"):
        return None, 0
    summed = ["rows_ok", "rows_failed", "rows_cached", "rows_skipped", "requests",
              "prompt_tokens", "completion_tokens", "cost_usd"]  # fmt: skip
    parts = ", ".join(
        f"sum({ident(n)}) AS {ident(n)}" if catalog.has(RUNS_TABLE, n) else f"NULL AS {ident(n)}"
        for n in summed
    )
    row = rows(
        con, f"SELECT count(*) AS runs, {parts} FROM {RUNS_TABLE} WHERE table_name = ?", [table]
    )[0]
    if not row["runs"]:
        return None, 0
    return _counts(row), int(row["runs"])


def in_tables(con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str) -> Counts:
    """What the result and errors tables hold now: rows, and the usage recorded on them."""
    totals: dict[str, float] = {}
    found: dict[str, int] = {}
    for name, role in ((table, "ok"), (f"{table}_errors", "failed")):
        if not catalog.has(name):
            continue
        usage = [
            ("_requests", "requests"),
            ("_prompt_tokens", "prompt_tokens"),
            ("_completion_tokens", "completion_tokens"),
            ("_cost_usd", "cost_usd"),
        ]
        parts = ", ".join(
            f"sum({ident(c)}) AS {out}" if catalog.has(name, c) else f"NULL AS {out}"
            for c, out in usage
        )
        row = rows(con, f"SELECT count(*) AS n, {parts} FROM {ident(name)}")[0]
        found[role] = int(row["n"])
        for _, out in usage:
            if row[out] is not None:
                totals[out] = totals.get(out, 0) + row[out]
    cost = totals.get("cost_usd")
    return Counts(
        rows_ok=found.get("ok"),
        rows_failed=found.get("failed"),
        rows_cached=None,
        rows_skipped=None,
        requests=int(totals["requests"]) if "requests" in totals else None,
        prompt_tokens=int(totals["prompt_tokens"]) if "prompt_tokens" in totals else None,
        completion_tokens=(
            int(totals["completion_tokens"]) if "completion_tokens" in totals else None
        ),
        cost_usd=None if cost is None else float(cost),
    )


def error_classes(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str, key: str, run_id: str | None
) -> tuple[ErrorClass, ...]:
    """The errors table grouped by error class, largest first, with one message each."""
    errors = f"{table}_errors"
    if not catalog.has(errors, "_error_class"):
        return ()
    message = "_message" if catalog.has(errors, "_message") else "NULL"
    # the message of the smallest key: the same example every time the report is written
    example = f"arg_min({message}, {ident(key)})" if catalog.has(errors, key) else f"min({message})"
    if catalog.has(errors, "_run_id"):
        latest, params = "count(*) FILTER (WHERE _run_id = ?)", [run_id]
    else:
        latest, params = "0", []
    found = rows(
        con,
        f"SELECT _error_class AS name, count(*) AS n, {latest} AS latest, {example} AS example "
        f"FROM {ident(errors)} GROUP BY 1 ORDER BY n DESC, name",
        params,
    )
    return tuple(
        ErrorClass(str(r["name"]), int(r["n"]), int(r["latest"] or 0), r["example"]) for r in found
    )


# ---------------------------------------------------------------------- fields and confidence


def _fill_exprs(name: str, shape: Shape, sql: str) -> list[tuple[str, str, str]]:
    """(path, kind, SQL condition "holds a value") for a column and the leaves of its nested
    models; lists count as filled when non-empty, and what is inside them is not split."""
    if isinstance(shape, Items):
        return [(name, "list", f"len({sql}) > 0")]
    out = [(name, "model" if isinstance(shape, Fields) else "value", f"{sql} IS NOT NULL")]
    if isinstance(shape, Fields):
        for child, sub in shape.fields:
            out.extend(
                _fill_exprs(f"{name}.{child}", sub, f"struct_extract({sql}, {literal(child)})")
            )
    return out


def fill_rates(
    con: duckdb.DuckDBPyConnection, table: str, fields: list[tuple[str, DuckDBPyType]]
) -> tuple[FieldFill, ...]:
    """For each field (and each leaf of nested models), how many rows hold a value. One scan."""
    exprs: list[tuple[str, str, str]] = []
    for name, kind in fields:
        exprs.extend(_fill_exprs(name, type_shape(kind), ident(name)))
    if not exprs:
        return ()
    counted = ", ".join(
        f"count(*) FILTER (WHERE {cond}) AS f{i}" for i, (_, _, cond) in enumerate(exprs)
    )
    row = rows(con, f"SELECT count(*) AS n, {counted} FROM {ident(table)}")[0]
    total = int(row["n"])
    return tuple(
        FieldFill(path, int(row[f"f{i}"]), total, kind) for i, (path, kind, _) in enumerate(exprs)
    )


def histogram(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str, threshold: float
) -> Histogram | None:
    """`_min_confidence` in ten bins; None when the table has no such column or no value."""
    if not catalog.has(table, "_min_confidence"):
        return None
    found = rows(
        con,
        "SELECT greatest(0, least(9, floor(_min_confidence * 10)))::INTEGER AS bin, "
        "count(*) AS n, count(*) FILTER (WHERE _min_confidence < ?) AS below "
        f"FROM {ident(table)} WHERE _min_confidence IS NOT NULL GROUP BY 1",
        [threshold],
    )
    if not found:
        return None
    bins = [0] * 10
    for r in found:
        bins[int(r["bin"])] = int(r["n"])
    below = sum(int(r["below"]) for r in found)
    return Histogram(tuple(bins), sum(bins), below, threshold)


# ---------------------------------------------------------------------- evaluation

_EVAL_FIELDS = ["field", "mode", "n", "accuracy", "precision", "recall", "f1"]


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def evaluation(con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str) -> Evaluation | None:
    """The latest evaluation in `<table>_eval` and its calibration from `<table>_eval_rows`."""
    summary, detail = f"{table}_eval", f"{table}_eval_rows"
    if not catalog.has(summary, "evaluated_at") and not catalog.has(detail, "evaluated_at"):
        return None
    head: dict[str, Any] = {}
    lines: list[dict[str, Any]] = []
    if catalog.has(summary, "evaluated_at"):
        found = rows(
            con,
            f"SELECT {catalog.select(summary, ['evaluated_at', 'run_id', 'labels'])} "
            f"FROM {ident(summary)} ORDER BY evaluated_at DESC NULLS LAST LIMIT 1",
        )
        if found:
            head = found[0]
            lines = rows(
                con,
                f"SELECT {catalog.select(summary, _EVAL_FIELDS)} FROM {ident(summary)} "
                "WHERE evaluated_at = ? ORDER BY field, mode",
                [head["evaluated_at"]],
            )
    accuracies = [
        FieldAccuracy(
            field=str(r["field"]),
            mode=r["mode"],
            n=None if r["n"] is None else int(r["n"]),
            accuracy=_float(r["accuracy"]),
            precision=_float(r["precision"]),
            recall=_float(r["recall"]),
            f1=_float(r["f1"]),
        )
        for r in lines
    ]
    # the per-value rows of the latest evaluation: what calibration and the review list read
    detailed_at = latest_evaluated(con, catalog, table)
    at = head.get("evaluated_at") or detailed_at
    if at is None:
        return None
    calibration, note = _calibration(con, catalog, detail, detailed_at)
    return Evaluation(
        evaluated_at=at,
        run_id=head.get("run_id"),
        labels=head.get("labels"),
        overall=tuple(a for a in accuracies if a.field == "*"),
        fields=tuple(a for a in accuracies if a.field != "*"),
        calibration=calibration,
        calibration_note=note,
    )


def latest_evaluated(con: duckdb.DuckDBPyConnection, catalog: Catalog, table: str) -> Any:
    """When the latest evaluation of `<table>_eval_rows` was written (None: never)."""
    detail = f"{table}_eval_rows"
    if not catalog.has(detail, "evaluated_at"):
        return None
    return rows(con, f"SELECT max(evaluated_at) AS at FROM {ident(detail)}")[0]["at"]


def _calibration(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, detail: str, at: Any
) -> tuple[Calibration | None, str | None]:
    if not catalog.has(detail) or at is None:
        return None, f"no {detail} rows: no calibration"
    if not (catalog.has(detail, "confidence") and catalog.has(detail, "correct")):
        return None, f"{detail} has no confidence or correct column: no calibration"
    found = rows(
        con,
        "SELECT greatest(0, least(9, floor(confidence * 10)))::INTEGER AS bin, count(*) AS n, "
        "avg(confidence) AS conf, avg(correct::INTEGER) AS acc "
        f"FROM {ident(detail)} WHERE evaluated_at = ? AND confidence IS NOT NULL "
        "AND correct IS NOT NULL GROUP BY 1 ORDER BY 1",
        [at],
    )
    if not found:
        return None, "the evaluated values have no confidence (run.confidence: true asks for it)"
    bins = tuple(
        CalibrationBin(r["bin"] / 10, (r["bin"] + 1) / 10, int(r["n"]), r["conf"], r["acc"])
        for r in found
    )
    n = sum(b.n for b in bins)
    ece = sum(b.n * abs(b.accuracy - b.mean_confidence) for b in bins) / n
    return Calibration(bins, ece, n), None
