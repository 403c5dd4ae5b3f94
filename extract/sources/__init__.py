"""Where rows come from: one module per kind of source, one registry.

    base.py      `Source` (the protocol: columns, key, key checks, Arrow batches) and
                 `RelationSource`, the DuckDB relation every built-in source reads through
    csv.py       `csv`        parquet.py   `parquet`      jsonl.py   `jsonl` (and .jsonl.gz)
    duckdb.py    `duckdb`: a table or a query            python.py  `python`: rows from Python

Adding a source is a module with a class that takes `(config, base_dir)` and a line in `SOURCES`.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from ..config import SourceConfig
from .base import RelationSource, Source

__all__ = ["SOURCES", "RelationSource", "Source", "open_source"]

#: source type -> "module:Class" (relative to this package)
SOURCES: dict[str, str] = {
    "csv": ".csv:CsvSource",
    "parquet": ".parquet:ParquetSource",
    "jsonl": ".jsonl:JsonlSource",
    "duckdb": ".duckdb:DuckDBSource",
    "python": ".python:PythonSource",
}


def open_source(config: SourceConfig, *, base_dir: Path, rows: Any = None) -> Source:
    """Open the configured input and check that its key column exists.

    `rows` (a DataFrame, an Arrow table, an iterable of dicts) replaces the configured source;
    `base_dir` is where relative paths in rows resolve when the source is not a file.
    """
    if rows is not None:
        config = config.model_copy(update={"type": "python", "path": None})
    module, _, name = SOURCES[config.type].partition(":")
    cls = getattr(importlib.import_module(module, __name__), name)
    if config.type == "python":
        source: Source = cls(config, base_dir, rows)
    else:
        source = cls(config, base_dir)
    return source
