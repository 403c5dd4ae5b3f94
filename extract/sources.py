"""Where rows come from: CSV, Parquet, or a DuckDB table or query, all read through DuckDB.

DuckDB streams every kind in Arrow batches, so memory does not grow with the input, and the key
checks (duplicate or null keys) run as SQL over the whole input before any request is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb

from .config import SourceConfig
from .errors import SourceError

__all__ = ["Source", "open_source"]


#: DuckDB settings for reading the input: a bounded buffer pool, and one thread (reading is not
#: what limits a run; every thread holds read buffers of its own)
CONFIG: dict[str, str | bool | int | float | list[str]] = {"memory_limit": "128MB", "threads": 1}


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _first_line(e: BaseException) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


class Source:
    """An open input. `columns` and `types` describe it; `batches()` streams its rows as dicts."""

    def __init__(self, config: SourceConfig):
        self.config = config
        self.key = config.key
        self.label = str(config.path) if config.path is not None else "duckdb query"
        try:
            if config.type == "duckdb" and config.path is not None:
                if not config.path.exists():
                    raise SourceError(
                        f"{config.path}: no such database file", path=str(config.path)
                    )
                self._con = duckdb.connect(str(config.path), read_only=True, config=CONFIG)
            else:
                self._con = duckdb.connect(config=CONFIG)
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot open ({_first_line(e)})", path=self.label
            ) from e
        self._sql = self._select_sql()
        try:
            described = self._con.sql(f"DESCRIBE {self._sql}").fetchall()
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot read the input: {_first_line(e)}", path=self.label
            ) from e
        self.types: dict[str, str] = {str(row[0]): str(row[1]) for row in described}
        self.columns = list(self.types)
        if self.key not in self.types:
            raise SourceError(
                f"{self.label}: key column '{self.key}' not found; columns are: "
                + ", ".join(self.columns),
                path=self.label,
            )

    def _select_sql(self) -> str:
        c = self.config
        if c.type == "csv":
            assert c.path is not None
            if not c.path.exists():
                raise SourceError(f"{c.path}: no such file", path=str(c.path))
            # An explicit dialect: the sniffer would otherwise read a broken file as one column.
            # A small read buffer (still four times DuckDB's longest line): memory stays flat.
            return (
                f"SELECT * FROM read_csv({_literal(str(c.path))}, header=true, delim=',', "
                "quote='\"', escape='\"', strict_mode=true, buffer_size=8388608)"
            )
        if c.type == "parquet":
            assert c.path is not None
            if not c.path.exists():
                raise SourceError(f"{c.path}: no such file", path=str(c.path))
            return f"SELECT * FROM read_parquet({_literal(str(c.path))})"
        if c.table is not None:
            return f"SELECT * FROM {_ident(c.table)}"
        assert c.query is not None
        return f"SELECT * FROM ({c.query.strip().rstrip(';')})"

    @property
    def key_type(self) -> str:
        return self.types[self.key]

    def count(self, limit: int | None = None) -> int:
        """Rows in the input (up to `limit`)."""
        sql = self._sql if limit is None else f"SELECT * FROM ({self._sql}) LIMIT {int(limit)}"
        return int(self._query(f"SELECT count(*) FROM ({sql})")[0][0])

    def check_keys(self) -> None:
        """Raise SourceError naming the rows whose key is null or repeated."""
        key = _ident(self.key)
        nulls = self._query(f"SELECT count(*) FROM ({self._sql}) WHERE {key} IS NULL")[0][0]
        if nulls:
            # Numbering every row costs memory in proportion to the input: only on this error path.
            first = self._query(
                f"SELECT min(n) FROM (SELECT row_number() OVER () AS n, {key} AS k "
                f"FROM ({self._sql})) WHERE k IS NULL"
            )[0][0]
            raise SourceError(
                f"{self.label}: {nulls} row(s) have a null key '{self.key}' "
                f"(the first is data row {first})",
                path=self.label,
            )
        dupes = self._query(
            f"SELECT {key}, count(*) FROM ({self._sql}) GROUP BY 1 HAVING count(*) > 1 "
            "ORDER BY 2 DESC, 1 LIMIT 5"
        )
        if dupes:
            shown = ", ".join(f"{k!r} ({n} times)" for k, n in dupes)
            raise SourceError(
                f"{self.label}: duplicate key '{self.key}': {shown}",
                path=self.label,
                row_key=dupes[0][0],
            )

    def batches(self, size: int, limit: int | None = None) -> Iterator[list[dict[str, Any]]]:
        """Stream the rows as lists of dicts, `size` rows at a time, in input order."""
        sql = self._sql if limit is None else f"SELECT * FROM ({self._sql}) LIMIT {int(limit)}"
        try:
            reader = self._con.cursor().sql(sql).to_arrow_reader(size)
            for batch in reader:
                if batch.num_rows:
                    yield batch.to_pylist()
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot read the input: {_first_line(e)}", path=self.label
            ) from e

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql).fetchall()
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot read the input: {_first_line(e)}", path=self.label
            ) from e

    def close(self) -> None:
        self._con.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(config: SourceConfig) -> Source:
    """Open the configured input and check that its key column exists."""
    return Source(config)


def resolve_image_base(config: SourceConfig) -> Path:
    """Image paths in a row are relative to the source file's folder."""
    return config.path.parent if config.path is not None else Path.cwd()
