"""Where results go: one module per kind of output, one registry.

    base.py      `Output`: where the ledger lives, what a run's end writes (the DuckDB output)
    duckdb.py    `duckdb`: the ledger is the output
    export.py    file outputs exported from a ledger beside them
    parquet.py   `parquet`        csv.py   `csv` (nested columns as JSON text)

Adding an output is a module with an `Output` subclass and a line in `OUTPUTS`.
"""

from __future__ import annotations

from ..config import OutputConfig
from .base import Output
from .csv import CsvOutput
from .duckdb import DuckDBOutput
from .export import errors_path
from .parquet import ParquetOutput

__all__ = ["OUTPUTS", "Output", "errors_path", "open_output"]

OUTPUTS: dict[str, type[Output]] = {
    "duckdb": DuckDBOutput,
    "parquet": ParquetOutput,
    "csv": CsvOutput,
}


def open_output(config: OutputConfig, table: str) -> Output:
    """The configured output (nothing is opened or written yet)."""
    return OUTPUTS[config.type](config.path, table)
