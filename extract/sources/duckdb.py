"""`type: duckdb`: a table of a DuckDB database file, or a query (on that file, or on none)."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ..config import SourceConfig
from ..errors import SourceError
from ..sql import first_line, ident
from .base import RelationSource, duckdb_config

__all__ = ["DuckDBSource"]

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
