"""`type: python`: rows handed over in Python, `extract.run_pipeline(path, source=rows)`.

`rows` may be a polars or pandas DataFrame, a pyarrow Table or RecordBatch, or an iterable of
dicts (a list, a generator). It becomes one Arrow table, registered in an in-memory DuckDB, and is
read and key-checked like any other source. Image and document paths are relative to the
pipeline file's folder. The pipeline file says `source: {type: python, key: id}`; any other
source type is replaced by the rows given, keeping its `key`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..config import SourceConfig
from ..errors import SourceError
from .base import RelationSource

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["PythonSource", "to_arrow_table"]

_NAME = "__extract_rows"


def to_arrow_table(rows: Any) -> pa.Table:
    """`rows` as one Arrow table; SourceError for what cannot be one."""
    import pyarrow as pa

    if isinstance(rows, pa.Table):
        return rows
    if isinstance(rows, pa.RecordBatch):
        return pa.Table.from_batches([rows])
    module = type(rows).__module__.split(".")[0]
    try:
        if module == "polars" and (hasattr(rows, "to_arrow") or hasattr(rows, "collect")):
            if not hasattr(rows, "to_arrow"):  # a LazyFrame
                rows = rows.collect()
            table: pa.Table = rows.to_arrow()
            return table
        if module == "pandas" and hasattr(rows, "columns"):
            return pa.Table.from_pandas(rows, preserve_index=False)
        if isinstance(rows, Mapping | str | bytes):
            raise SourceError(
                "source rows: expected a DataFrame, an Arrow table or an iterable of dicts, "
                f"not a {type(rows).__name__}"
            )
        if isinstance(rows, Iterable):
            items = list(rows)
            bad = next((i for i, r in enumerate(items) if not isinstance(r, Mapping)), None)
            if bad is not None:
                raise SourceError(
                    f"source rows: row {bad + 1} is a {type(items[bad]).__name__}, not a dict"
                )
            return pa.Table.from_pylist([dict(r) for r in items])
    except (pa.ArrowException, ValueError, TypeError) as e:
        raise SourceError(f"source rows: cannot be read as a table ({e})") from e
    raise SourceError(
        "source rows: expected a DataFrame, an Arrow table or an iterable of dicts, "
        f"not a {type(rows).__name__}"
    )


class PythonSource(RelationSource):
    def __init__(self, config: SourceConfig, base_dir: Path, rows: Any = None):
        if rows is None:
            raise SourceError(
                "source type python: no rows were given; pass them as "
                "extract.run_pipeline(path, source=rows), or give the pipeline a file source"
            )
        self._table = to_arrow_table(rows)
        if self._table.num_columns == 0:
            raise SourceError("source rows: no rows and no columns were given")
        super().__init__(config, label="rows from Python", base_dir=base_dir)

    def connect(self) -> duckdb.DuckDBPyConnection:
        con = super().connect()
        con.register(_NAME, self._table)
        return con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        # a registered table is visible on its own connection only
        cur = self._con.cursor()
        cur.register(_NAME, self._table)
        return cur

    def relation(self) -> str:
        return _NAME
