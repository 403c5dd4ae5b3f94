"""The ledger's store: the output DuckDB file opened for one run, its tables, and batch commits.

Opening it takes DuckDB's exclusive lock on the file (a second run on the same output fails at
once with a SinkError), creates the tables or checks their columns (a table whose columns no
longer match the schema is renamed `<table>__before_<time>`: nothing is dropped), replays the
journal a killed run left behind (extract/ledger/journal.py) and marks that run `killed`.

`commit(batch)` writes finished rows in one transaction: a key's new row replaces its old one in
`T` and `T_errors` alike, so replaying a journal twice changes nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from ..batch.store import BatchStore
from ..errors import SinkError, WriteFailed
from ..results import RowResult, RunSummary
from ..schema import Column, CompiledSchema, columns_ddl, insert_select
from ..sql import first_line, ident, literal
from ..trust.columns import trust_ddl
from ..trust.shape import model_shape
from . import frames
from .journal import Journal
from .reader import LedgerReader
from .tables import (
    CACHE_COLUMNS,
    CACHE_TABLE,
    ERROR_COLUMNS,
    PROVENANCE,
    RUN_COLUMNS,
    RUNS_TABLE,
    ddl,
)

__all__ = ["Ledger", "connect"]

#: DuckDB's buffer pool for the output file: enough for a batch, flat for any number of rows
MEMORY_LIMIT = "48MB"
#: rows per row group of the ledger's tables (DuckDB's default: 122,880). A checkpoint
#: recompresses the last, still growing row group, and its buffers grew with it up to the
#: memory limit (+20 MB of peak memory on a 100k-row run: bench/run.py --scenario memory); a
#: key-range look-up also skips more of a table of smaller groups.
ROW_GROUP_SIZE = 16384


def connect(path: Path, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open a ledger file; SinkError naming the file (and the process holding its lock)."""
    con: duckdb.DuckDBPyConnection | None = None
    try:
        if not read_only:
            path.parent.mkdir(parents=True, exist_ok=True)
        # DuckDB would otherwise keep up to 80% of RAM of table blocks cached: memory that
        # grows with the output. Past the limit it evicts them (they are on disk anyway). The
        # row group size is an option of ATTACH, not of connect: the file is attached to an
        # in-memory database and made the default one, so every query reads it unqualified.
        con = duckdb.connect(config={"memory_limit": MEMORY_LIMIT, "temp_directory": f"{path}.tmp"})
        options = f"ROW_GROUP_SIZE {ROW_GROUP_SIZE}" + (", READ_ONLY" if read_only else "")
        con.execute(f"ATTACH {literal(str(path))} AS ledger ({options})")
        con.execute("USE ledger")
        return con
    except duckdb.IOException as e:
        if con is not None:
            con.close()
        held = re.search(r"PID (\d+)", str(e))
        if "lock" in str(e).lower():
            who = f" (process {held.group(1)})" if held else ""
            raise SinkError(
                f"{path}: another extract run is writing this output{who}; "
                "wait for it to finish or write elsewhere",
                path=str(path),
            ) from e
        raise SinkError(f"{path}: cannot open the output ({first_line(e)})", path=str(path)) from e
    except (OSError, duckdb.Error) as e:
        if con is not None:
            con.close()
        raise SinkError(f"{path}: cannot open the output ({first_line(e)})", path=str(path)) from e


class Ledger:
    """The output DuckDB file of a pipeline, opened for one run."""

    def __init__(
        self,
        path: Path,
        table: str,
        *,
        key: str,
        key_type: str,
        columns: list[Column],
        compiled: CompiledSchema,
        seed: int,
    ):
        self.path = path
        self.table = table
        self.errors_table = f"{table}_errors"
        self.key = key
        self.columns = columns
        self.compiled = compiled
        self._constants: dict[str, Any] = {"_seed": seed, "_schema_hash": compiled.hash}
        self.journal = Journal(path)
        #: --full-refresh: a fresh answer replaces the cached one of its request
        self.replace_cache = False
        self._select = insert_select(columns)
        self.shape = model_shape(compiled.model)
        #: tables renamed out of the way because their columns no longer match the schema
        self.archived: list[str] = []
        self.con = connect(path)
        try:
            key_col = f"{ident(key)} {key_type}"
            own = [key_col, columns_ddl(columns), trust_ddl(self.shape), ddl(PROVENANCE)]
            self._ensure(table, ", ".join(own), archive=True, extend=True)
            errors = f"{key_col}, {ddl(ERROR_COLUMNS)}"
            self._ensure(self.errors_table, errors, archive=True, extend=True)
            self._ensure(CACHE_TABLE, ddl(CACHE_COLUMNS), extend=True)
            self._ensure(RUNS_TABLE, ddl(RUN_COLUMNS), extend=True)
            BatchStore.ensure(self.con)
            # Rows a killed run had finished but not yet written.
            self.commit(self.journal.replay(compiled.model))
            self.journal.remove_all()
            self.reader = LedgerReader(self.con, table, key=key, compiled=compiled)
            #: nothing to look up: a first run skips the per-batch lookups altogether
            self.empty = self.reader.is_empty()
            self.con.execute(
                f"UPDATE {RUNS_TABLE} SET status = 'killed', stop_reason = "
                "'the process ended without closing the run' WHERE status = 'running'"
            )
        except BaseException:
            self.con.close()
            raise

    def _ensure(
        self, table: str, columns: str, *, archive: bool = False, extend: bool = False
    ) -> None:
        """Create the table, or check that an existing one has exactly these columns.

        With `archive`, a table of other columns (the schema changed) is renamed out of the way,
        `<table>__before_<time>`, and a new one is created: nothing is dropped, and every row is
        requested again since its request hash changed with the schema. With `extend`, a table
        that has the first of these columns gets the later ones added (a ledger written by an
        older version: its rows stay as they are, and it is not archived).
        """
        query = (
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_catalog = ? AND table_schema = 'main' "
            "ORDER BY ordinal_position"
        )
        try:
            plain = columns.replace(" PRIMARY KEY", "")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE __expected ({plain})")
            want = self.con.execute(query, ["__expected", "temp"]).fetchall()
            self.con.execute("DROP TABLE __expected")
            database = self.con.execute("SELECT current_database()").fetchall()[0][0]
            have = self.con.execute(query, [table, database]).fetchall()
            grows = extend and bool(have) and have == want[: len(have)]
            if have and have != want and archive and not grows:
                stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
                old = f"{table}__before_{stamp}"
                self.con.execute(f"ALTER TABLE {ident(table)} RENAME TO {ident(old)}")
                self.archived.append(old)
                have = []
            if have and extend and have == want[: len(have)]:
                for name, kind in want[len(have) :]:
                    self.con.execute(f"ALTER TABLE {ident(table)} ADD COLUMN {ident(name)} {kind}")
                have = want
            if not have:
                self.con.execute(f"CREATE TABLE {ident(table)} ({columns})")
                return
        except duckdb.Error as e:
            raise SinkError(
                f"{self.path}: cannot create table {table!r} ({first_line(e)})",
                path=str(self.path),
            ) from e
        if want != have:
            diff = sorted(set(want) ^ set(have))[:3]
            raise SinkError(
                f"{self.path}: table {table!r} exists with other columns than this pipeline writes "
                f"(e.g. {', '.join(f'{n} {t}' for n, t in diff)}); "
                "write to another table or drop it",
                path=str(self.path),
            )

    # ------------------------------------------------------------------ writing

    def commit(self, results: Sequence[RowResult]) -> None:
        """Write finished rows in one transaction. The connection has one user at a time: the
        run's writer thread (extract/ledger/writer.py)."""
        if not results:
            return
        ok = [r for r in results if r.instance is not None]
        failed = [r for r in results if r.instance is None]
        fresh = [r for r in ok if not r.from_cache]
        # a split row's parts are cached too, whether the row validated or not
        fresh += [p for r in results for p in r.part_answers if p.ok and not p.from_cache]
        k = ident(self.key)
        try:
            self.con.execute("BEGIN")
            # Only keys the ledger already holds need deleting: a first run scans nothing here.
            replacing = [r for r in results if r.replaces]
            if replacing:
                self.con.register("__keys", frames.keys_frame(self.key, replacing))
                for table in (self.table, self.errors_table):
                    self.con.execute(
                        f"DELETE FROM {ident(table)} WHERE {k} IN (SELECT {k} FROM __keys)"
                    )
                self.con.unregister("__keys")
            if ok:
                frame = frames.ok_frame(self.key, ok, self.columns, self.shape, self._constants)
                self._insert(self.table, frame, self._select)
            if failed:
                self._insert(
                    self.errors_table, frames.failed_frame(self.key, failed, self._constants)
                )
            if fresh:
                # No key on the cache: an index would live in memory and grow with every row.
                # A request is answered again only under --full-refresh, which replaces it.
                frame = frames.cache_frame(fresh)
                if self.replace_cache:
                    self.con.register("__batch", frame)
                    self.con.execute(
                        f"DELETE FROM {CACHE_TABLE} WHERE request_hash IN "
                        "(SELECT request_hash FROM __batch)"
                    )
                    self.con.unregister("__batch")
                self._insert(CACHE_TABLE, frame)
            self.con.execute("COMMIT")
        except duckdb.Error as e:
            # a failed COMMIT has ended the transaction already
            with contextlib.suppress(duckdb.Error):
                self.con.execute("ROLLBACK")
            raise WriteFailed(
                f"{self.path}: writing to {self.table!r} failed ({first_line(e)}); the rows "
                "journaled so far land on the next run",
                path=str(self.path),
            ) from e

    def _insert(self, table: str, frame: Any, select: str = "*") -> None:
        self.con.register("__batch", frame)
        try:
            self.con.execute(f"INSERT INTO {ident(table)} BY NAME SELECT {select} FROM __batch")
        finally:
            self.con.unregister("__batch")

    def save_run(self, summary: RunSummary) -> None:
        """Insert or update the run's row in `_extract_runs`."""
        record = summary.record()
        names = ", ".join(ident(k) for k in record)
        marks = ", ".join("?" for _ in record)
        self.con.execute(
            f"INSERT OR REPLACE INTO {RUNS_TABLE} ({names}) VALUES ({marks})",
            list(record.values()),
        )

    def close(self) -> None:
        try:
            # a journal that cannot be flushed here holds nothing uncommitted: the run's last
            # commit came first, and its failure is the run's error
            with contextlib.suppress(OSError):
                self.journal.close()
        finally:
            self.con.close()
