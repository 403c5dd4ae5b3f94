"""File outputs (Parquet, CSV): exports of the ledger's tables, written when a run ends.

The ledger sits beside the file as `<stem>.ledger.duckdb`; the run ends by exporting `<path>`
(results, ordered by key) and `<stem>_errors.<ext>`. Each file is written under a temporary
name and moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from ..errors import SinkError
from ..sql import first_line, ident, literal
from .base import Output

if TYPE_CHECKING:
    import duckdb

__all__ = ["FileOutput", "errors_path"]


def errors_path(path: Path) -> Path:
    """Where a file output's errors table goes: `<stem>_errors.<ext>` beside it."""
    return path.with_name(f"{path.stem}_errors{path.suffix}")


class FileOutput(Output):
    """An output exported to a file from a ledger beside it."""

    #: DuckDB's COPY options
    copy_options: ClassVar[str] = ""

    @property
    def ledger_path(self) -> Path:
        return self.path.with_name(f"{self.path.stem}.ledger.duckdb")

    def select_list(self, columns: list[tuple[str, str]]) -> str:
        """What is exported from a table of these (name, DuckDB type) columns."""
        return "*"

    def finish(self, con: duckdb.DuckDBPyConnection, key: str) -> None:
        import duckdb

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._copy(con, self.table, key, self.path)
            self._copy(con, f"{self.table}_errors", key, errors_path(self.path))
        except (OSError, duckdb.Error) as e:
            raise SinkError(
                f"{self.path}: cannot write the {self.kind} output ({first_line(e)})",
                path=str(self.path),
            ) from e

    def _copy(self, con: duckdb.DuckDBPyConnection, table: str, key: str, target: Path) -> None:
        columns = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = ? AND table_schema = 'main' ORDER BY ordinal_position",
            [table],
        ).fetchall()
        tmp = target.with_name(f".{target.name}.partial")
        con.execute(
            f"COPY (SELECT {self.select_list(columns)} FROM {ident(table)} ORDER BY {ident(key)}) "
            f"TO {literal(str(tmp))} ({self.copy_options})"
        )
        os.replace(tmp, target)
