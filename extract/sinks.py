"""Parquet and CSV outputs: exports of the ledger's tables, written when a run ends.

Every run writes to a DuckDB ledger (extract/ledger.py), which is what makes runs resumable and
incremental. With `output.type: parquet` or `csv` the ledger sits beside the file as
`<stem>.ledger.duckdb`, and the run ends by exporting `<path>` (results, ordered by key) and
`<stem>_errors.<ext>`. Each file is written under a temporary name and moved into place, so a
reader never sees half a file. CSV has no nested types: STRUCT, LIST, MAP and JSON columns are
written as JSON text.
"""

from __future__ import annotations

import os
from pathlib import Path

import duckdb

from .errors import SinkError

__all__ = ["errors_path", "export", "ledger_path"]


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def ledger_path(kind: str, path: Path) -> Path:
    """The DuckDB file that holds a run's state: the output itself, or one beside a file output."""
    return path if kind == "duckdb" else path.with_name(f"{path.stem}.ledger.duckdb")


def errors_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_errors{path.suffix}")


def _is_nested(data_type: str) -> bool:
    return data_type.endswith("]") or data_type.startswith(("STRUCT", "MAP", "JSON", "UNION"))


def _copy(con: duckdb.DuckDBPyConnection, table: str, key: str, kind: str, target: Path) -> None:
    cols = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
        [table],
    ).fetchall()
    if kind == "csv":
        select = ", ".join(
            f"CAST(to_json({_ident(n)}) AS VARCHAR) AS {_ident(n)}" if _is_nested(t) else _ident(n)
            for n, t in cols
        )
        options = "FORMAT csv, HEADER true"
    else:
        select = "*"
        options = "FORMAT parquet"
    tmp = target.with_name(f".{target.name}.partial")
    con.execute(
        f"COPY (SELECT {select} FROM {_ident(table)} ORDER BY {_ident(key)}) "
        f"TO {_literal(str(tmp))} ({options})"
    )
    os.replace(tmp, target)


def export(con: duckdb.DuckDBPyConnection, kind: str, path: Path, table: str, key: str) -> None:
    """Write the results table to `path` and the errors table beside it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _copy(con, table, key, kind, path)
        _copy(con, f"{table}_errors", key, kind, errors_path(path))
    except (OSError, duckdb.Error) as e:
        raise SinkError(f"{path}: cannot write the {kind} output ({e})", path=str(path)) from e
