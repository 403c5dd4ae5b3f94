"""What a source is, and the DuckDB relation that every built-in source reads through.

A `Source` gives its columns and key, checks the keys (duplicate or null keys are errors naming
the rows) before any request is sent, and streams its rows as Arrow record batches in input order.

`RelationSource` is that, over one SQL `SELECT` on a DuckDB connection: a subclass says which
relation (`relation()`: a `read_csv(...)`, a table, a query, a registered Arrow table). DuckDB
streams every kind in Arrow batches, so memory does not grow with the input, and the key checks
run as SQL over the whole input.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import duckdb

from ..errors import SourceError
from ..sql import first_line, ident

if TYPE_CHECKING:
    import pyarrow as pa

    from ..config import SourceConfig

__all__ = ["FileSource", "RelationSource", "Source", "duckdb_config"]

#: DuckDB's buffer pool while reading the input. DuckDB keeps the blocks of a table it scanned
#: cached up to its limit, so the limit is what a run's memory grows by with the input: 32 MB
#: keeps a 1M-row run within 20% of a 10k-row one (bench/run.py --scenario memory). The key
#: checks' sort spills beyond it.
MEMORY_LIMIT = "32MB"


def duckdb_config(
    spill_dir: Path, memory_limit: str
) -> dict[str, str | bool | int | float | list[str]]:
    """DuckDB settings for reading the input: a bounded buffer pool that spills to a folder of
    its own (not `.tmp` in the working directory, nor beside a database that may be read-only),
    and one thread (reading is not what limits a run; every thread holds buffers of its own)."""
    return {"memory_limit": memory_limit, "threads": 1, "temp_directory": str(spill_dir)}


class Source(Protocol):
    """An open input."""

    #: the key column's name, and its DuckDB type (the ledger's key column has the same)
    key: str
    key_type: str
    #: the source's columns, in order (prompt templates may name any of them)
    columns: list[str]
    #: how errors name the input: a file path, or a description
    label: str
    #: image and document paths in a row are relative to this folder
    base_dir: Path

    def count(self, limit: int | None = None) -> int:
        """Rows in the input (up to `limit`)."""
        ...

    def check_keys(self) -> None:
        """Raise SourceError naming the rows whose key is null or repeated."""
        ...

    def batches(self, size: int, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        """Stream the rows `size` at a time, in input order."""
        ...

    def close(self) -> None: ...


class RelationSource:
    """A source read through one DuckDB `SELECT`; subclasses give the relation."""

    #: DuckDB's buffer pool for this kind of input
    memory_limit = MEMORY_LIMIT

    def __init__(self, config: SourceConfig, *, label: str, base_dir: Path):
        self.config = config
        self.key = config.key
        self.label = label
        self.base_dir = base_dir
        #: where DuckDB spills what does not fit its buffer pool: created by DuckDB when it first
        #: spills, removed on close
        self.spill_dir = Path(tempfile.gettempdir()) / f"extract-source-{uuid.uuid4().hex[:12]}"
        try:
            self._con = self.connect()
        except BaseException:
            self._remove_spill()
            raise
        try:
            self._sql = "SELECT * FROM " + self.relation()
            described = self._query(f"DESCRIBE {self._sql}")
        except BaseException:
            self.close()
            raise
        self.types: dict[str, str] = {str(row[0]): str(row[1]) for row in described}
        self.columns = list(self.types)
        if self.key not in self.types:
            self.close()
            raise SourceError(
                f"{self.label}: key column '{self.key}' not found; columns are: "
                + ", ".join(self.columns),
                path=self.label,
            )

    # ------------------------------------------------------------------ what subclasses give

    def connect(self) -> duckdb.DuckDBPyConnection:
        """The connection the relation is read on (an in-memory database by default)."""
        return duckdb.connect(config=duckdb_config(self.spill_dir, self.memory_limit))

    def relation(self) -> str:
        """The SQL of what to read from: a table function, a table, a subquery."""
        raise NotImplementedError

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor to stream the rows on, apart from the one the checks run on."""
        return self._con.cursor()

    # ------------------------------------------------------------------ the source

    @property
    def key_type(self) -> str:
        return self.types[self.key]

    def _limited(self, limit: int | None) -> str:
        return self._sql if limit is None else f"SELECT * FROM ({self._sql}) LIMIT {int(limit)}"

    def count(self, limit: int | None = None) -> int:
        return int(self._query(f"SELECT count(*) FROM ({self._limited(limit)})")[0][0])

    def check_keys(self) -> None:
        key = ident(self.key)
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
        # Neighbours in key order: a sort spills to disk where a GROUP BY's hash table of every
        # key (48 MB for a million) stays in memory. Only a repeated key is then counted.
        repeated = self._query(
            f"SELECT 1 FROM (SELECT {key} = lag({key}) OVER (ORDER BY {key}) AS same "
            f"FROM ({self._sql})) WHERE same LIMIT 1"
        )
        if repeated:
            dupes = self._query(
                f"SELECT {key}, count(*) FROM ({self._sql}) GROUP BY 1 HAVING count(*) > 1 "
                "ORDER BY 2 DESC, 1 LIMIT 5"
            )
            shown = ", ".join(f"{k!r} ({n} times)" for k, n in dupes)
            raise SourceError(
                f"{self.label}: duplicate key '{self.key}': {shown}",
                path=self.label,
                row_key=dupes[0][0],
            )

    def batches(self, size: int, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        try:
            reader = self.cursor().sql(self._limited(limit)).to_arrow_reader(size)
            for batch in reader:
                if batch.num_rows:
                    yield batch
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot read the input: {first_line(e)}", path=self.label
            ) from e

    def _query(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql).fetchall()
        except duckdb.Error as e:
            raise SourceError(
                f"{self.label}: cannot read the input: {first_line(e)}", path=self.label
            ) from e

    def close(self) -> None:
        self._con.close()
        self._remove_spill()

    def _remove_spill(self) -> None:
        shutil.rmtree(self.spill_dir, ignore_errors=True)

    def __enter__(self) -> RelationSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FileSource(RelationSource):
    """A source read from the file at `path`: named by it, paths in rows relative to its folder."""

    def __init__(self, config: SourceConfig, base_dir: Path):
        path = config.path
        assert path is not None  # the config requires it for file sources
        if not path.is_file():
            raise SourceError(f"{path}: no such file", path=str(path))
        self.path = path
        super().__init__(config, label=str(path), base_dir=path.parent)
