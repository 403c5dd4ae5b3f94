"""`type: duckdb` (the default): the output file is the ledger; tables are written as rows
finish, and nothing is left to do when the run ends."""

from __future__ import annotations

from .base import Output

__all__ = ["DuckDBOutput"]


class DuckDBOutput(Output):
    kind = "duckdb"
