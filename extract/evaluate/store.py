"""The output's DuckDB file for an evaluation: the labelled rows read, the evaluation appended.

For a pipeline writing table T, each evaluation appends to

    T_eval        one row per field, and one for the overall accuracy (field '*'):
                  evaluated_at, run_id, labels, field, mode, n, accuracy, precision, recall, f1
    T_eval_rows   one row per labelled value: evaluated_at, run_id, key, field, expected and
                  actual (JSON text; actual is NULL for rows in the errors table or missing
                  from the output), score, correct, confidence, grounding

`run_id` is the latest run in `_extract_runs` that wrote T. A file output (Parquet, CSV) keeps
these tables in its ledger beside it. The file is opened read-write only for the evaluation's
few queries; a run holding its lock makes that fail at once with a one-line SinkError.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from ..errors import SinkError
from ..sql import first_line, ident
from .coerce import plain
from .compare import OutputRows
from .labels import key_text
from .result import COMPARED, EvalResult

__all__ = ["EVAL_COLUMNS", "ROW_COLUMNS", "append", "connect_output", "read_output"]

EVAL_COLUMNS = [
    ("evaluated_at", "TIMESTAMP WITH TIME ZONE"),
    ("run_id", "VARCHAR"),
    ("labels", "VARCHAR"),
    ("field", "VARCHAR"),
    ("mode", "VARCHAR"),
    ("n", "BIGINT"),
    ("accuracy", "DOUBLE"),
    ("precision", "DOUBLE"),
    ("recall", "DOUBLE"),
    ("f1", "DOUBLE"),
]
ROW_COLUMNS = [
    ("evaluated_at", "TIMESTAMP WITH TIME ZONE"),
    ("run_id", "VARCHAR"),
    ("key", "VARCHAR"),
    ("field", "VARCHAR"),
    ("expected", "VARCHAR"),
    ("actual", "VARCHAR"),
    ("score", "DOUBLE"),
    ("correct", "BOOLEAN"),
    ("confidence", "DOUBLE"),
    ("grounding", "VARCHAR"),
]
#: the trust columns an evaluation reads when the table has them
TRUST_COLUMNS = ("_confidence", "_grounding")
_RUNS = "_extract_runs"


def connect_output(path: Path, *, write: bool) -> duckdb.DuckDBPyConnection:
    """The output's DuckDB file (the ledger of a file output); SinkError when it is absent or
    a run holds its lock."""
    from ..ledger.store import connect

    if not path.exists():
        raise SinkError(f"{path}: no output yet (run the pipeline first)", path=str(path))
    return connect(path, read_only=not write)


def _columns(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    return [
        (str(n), str(t))
        for n, t in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def _dicts(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def read_output(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    table: str,
    *,
    key: str,
    keys: list[str],
    columns: list[str],
) -> OutputRows:
    """The output rows and errors of the labelled `keys` (field `columns` only), the number of
    output rows no label names, and the latest run."""
    import pyarrow as pa

    have = {name for name, _ in _columns(con, table)}
    if not have:
        raise SinkError(f"{path}: no table {table!r} yet (run the pipeline first)", path=str(path))
    absent = [c for c in (key, *columns) if c not in have]
    if absent:
        raise SinkError(
            f"{path}: table {table!r} has no column {absent[0]!r} (written by another schema?)",
            path=str(path),
        )
    k = f"CAST({ident(key)} AS VARCHAR)"
    wanted = [*columns, *(c for c in TRUST_COLUMNS if c in have)]
    select = ", ".join([f"{k} AS __key", *(ident(c) for c in wanted)])
    con.register("__eval_keys", pa.table({"k": pa.array(keys, type=pa.string())}))
    try:
        found = _dicts(
            con.execute(
                f"SELECT {select} FROM {ident(table)} WHERE {k} IN (SELECT k FROM __eval_keys)"
            )
        )
        unlabelled = con.execute(
            f"SELECT count(*) FROM {ident(table)} WHERE {k} NOT IN (SELECT k FROM __eval_keys)"
        ).fetchall()[0][0]
        errors: dict[str, str] = {}
        if _columns(con, f"{table}_errors"):
            errors = {
                key_text(r[0]): str(r[1])
                for r in con.execute(
                    f"SELECT {k}, _error_class FROM {ident(table + '_errors')} "
                    f"WHERE {k} IN (SELECT k FROM __eval_keys)"
                ).fetchall()
            }
        run_id = None
        if _columns(con, _RUNS):
            last = con.execute(
                f"SELECT run_id FROM {_RUNS} WHERE table_name = ? ORDER BY started_at DESC LIMIT 1",
                [table],
            ).fetchall()
            run_id = str(last[0][0]) if last else None
    except duckdb.Error as e:
        raise SinkError(f"{path}: cannot read {table!r} ({first_line(e)})", path=str(path)) from e
    finally:
        con.unregister("__eval_keys")
    rows = {str(r.pop("__key")): r for r in found}
    return OutputRows(rows, errors, int(unlabelled), run_id)


def _json(value: Any) -> str:
    return json.dumps(plain(value), ensure_ascii=False)


def _ensure(
    con: duckdb.DuckDBPyConnection, path: Path, table: str, spec: list[tuple[str, str]]
) -> None:
    columns = ", ".join(f"{ident(n)} {t}" for n, t in spec)
    con.execute(f"CREATE TABLE IF NOT EXISTS {ident(table)} ({columns})")
    if _columns(con, table) != spec:
        raise SinkError(
            f"{path}: table {table!r} exists with other columns than an evaluation writes; "
            "rename or drop it",
            path=str(path),
        )


def append(con: duckdb.DuckDBPyConnection, path: Path, result: EvalResult) -> None:
    """Append the evaluation to `<table>_eval` and `<table>_eval_rows`, in one transaction."""
    import pyarrow as pa

    at, run = result.evaluated_at, result.run_id
    summary = [
        {
            "evaluated_at": at,
            "run_id": run,
            "labels": result.labels,
            "field": f.path,
            "mode": f.mode,
            "n": f.n,
            "accuracy": f.accuracy,
            "precision": f.precision,
            "recall": f.recall,
            "f1": f.f1,
        }
        for f in result.fields.values()
    ]
    summary.append(
        {
            "evaluated_at": at,
            "run_id": run,
            "labels": result.labels,
            "field": "*",
            "mode": None,
            "n": sum(f.n for f in result.fields.values()),
            "accuracy": result.overall,
            "precision": None,
            "recall": None,
            "f1": None,
        }
    )
    values = [
        {
            "evaluated_at": at,
            "run_id": run,
            "key": v.key,
            "field": v.field,
            "expected": _json(v.expected),
            "actual": _json(v.actual) if v.status == COMPARED else None,
            "score": v.score,
            "correct": v.correct,
            "confidence": v.confidence,
            "grounding": v.grounding,
        }
        for v in result.values
    ]
    arrow = {
        "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
        "VARCHAR": pa.string(),
        "BIGINT": pa.int64(),
        "DOUBLE": pa.float64(),
        "BOOLEAN": pa.bool_(),
    }
    tables = (
        (f"{result.table}_eval", EVAL_COLUMNS, summary),
        (f"{result.table}_eval_rows", ROW_COLUMNS, values),
    )
    try:
        con.execute("BEGIN")
        for table, spec, rows in tables:
            _ensure(con, path, table, spec)
            schema = pa.schema([(n, arrow[t]) for n, t in spec])
            con.register("__eval_batch", pa.Table.from_pylist(rows, schema=schema))
            try:
                con.execute(f"INSERT INTO {ident(table)} BY NAME SELECT * FROM __eval_batch")
            finally:
                con.unregister("__eval_batch")
        con.execute("COMMIT")
    except BaseException as e:
        con.execute("ROLLBACK")
        if isinstance(e, duckdb.Error):
            raise SinkError(
                f"{path}: cannot write the evaluation ({first_line(e)})", path=str(path)
            ) from e
        raise
