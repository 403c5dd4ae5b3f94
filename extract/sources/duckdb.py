"""`type: duckdb`: a table of a DuckDB database file, or a query (on that file, or on none)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from ..config import SourceConfig
from ..errors import SourceError
from ..sql import first_line, ident
from .base import RelationSource, duckdb_config

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["DuckDBSource", "KeyRanges"]

QUERY_MEMORY_LIMIT = "128MB"


class DuckDBSource(RelationSource):
    def __init__(self, config: SourceConfig, base_dir: Path):
        path = config.path
        label = str(path) if path is not None else "duckdb query"
        base = path.parent if path is not None else base_dir
        super().__init__(config, label=label, base_dir=base)

    def connect(self) -> duckdb.DuckDBPyConnection:
        path = self.config.path
        # the user's SQL (joins, aggregates) gets more room before it spills than a table scan
        limit = QUERY_MEMORY_LIMIT if self.config.query is not None else self.memory_limit
        config = duckdb_config(self.spill_dir, limit)
        if path is None:
            return duckdb.connect(config=config)
        if not path.is_file():
            raise SourceError(f"{path}: no such database file", path=str(path))
        try:
            return duckdb.connect(str(path), read_only=True, config=config)
        except duckdb.Error as e:
            raise SourceError(f"{path}: cannot open ({first_line(e)})", path=str(path)) from e

    def relation(self) -> str:
        if self.config.table is not None:
            return ident(self.config.table)
        assert self.config.query is not None  # the config requires one of the two
        return f"({self.config.query.strip().rstrip(';')})"

    def key_ranges(self, parts: int, limit: int | None = None) -> KeyRanges:
        """The rows (the first `limit`) cut into at most `parts` ranges of about as many rows."""
        sql = self._limited(limit)
        k = ident(self.key)
        bounds: list[Any] = []
        if parts > 1:
            quantiles = ", ".join(str(i / parts) for i in range(1, parts))
            row = self._query(f"SELECT quantile_disc({k}, [{quantiles}]) FROM ({sql})")[0][0]
            # a skewed key can give the same bound twice: the empty range between is dropped
            bounds = sorted({b for b in row or [] if b is not None})
        return KeyRanges(self.config.path, sql, self.key, tuple(bounds))


@dataclass(frozen=True)
class KeyRanges:
    """A DuckDB source cut into ranges of its key, to be read apart (by another process: Ray's
    read tasks, extract/engines/ray/). Range `i` holds the keys from `bounds[i - 1]` (included)
    to `bounds[i]` (excluded); the first and last ranges are open."""

    path: Path | None
    sql: str
    key: str
    bounds: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.bounds) + 1

    def read(self, i: int) -> pa.Table:
        """The rows of range `i`, in key order."""
        k = ident(self.key)
        where, params = [], []
        if i > 0:
            where.append(f"{k} >= ?")
            params.append(self.bounds[i - 1])
        if i < len(self.bounds):
            where.append(f"{k} < ?")
            params.append(self.bounds[i])
        sql = f"SELECT * FROM ({self.sql})"
        if where:
            sql += " WHERE " + " AND ".join(where)
        label = str(self.path) if self.path is not None else "duckdb query"
        try:
            # in a process of its own (a Ray read task): a spill folder of its own too
            with tempfile.TemporaryDirectory(prefix="extract-range-") as spill:
                config = duckdb_config(Path(spill), QUERY_MEMORY_LIMIT)
                if self.path is None:
                    con = duckdb.connect(config=config)
                else:
                    con = duckdb.connect(str(self.path), read_only=True, config=config)
                try:
                    return con.execute(sql + f" ORDER BY {k}", params).to_arrow_table()
                finally:
                    con.close()
        except duckdb.Error as e:
            raise SourceError(
                f"{label}: cannot read key range {i}: {first_line(e)}", path=label
            ) from e
