"""What an output is: where its ledger lives, and what the end of a run writes.

Every run writes to a DuckDB ledger (extract/ledger/), which is what makes runs resumable and
incremental. A DuckDB output *is* its ledger; a file output keeps the ledger beside it as
`<stem>.ledger.duckdb` and is exported from it when a run ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import duckdb

__all__ = ["Output"]


class Output:
    """An output at `path`; the base class is the DuckDB one: the ledger is the output."""

    kind: ClassVar[str] = "duckdb"

    def __init__(self, path: Path, table: str):
        self.path = path
        self.table = table

    @property
    def ledger_path(self) -> Path:
        """The DuckDB file that holds the run's state."""
        return self.path

    def finish(self, con: duckdb.DuckDBPyConnection, key: str) -> None:
        """Write the output from the ledger (`con`) once a run has ended."""
        return None
