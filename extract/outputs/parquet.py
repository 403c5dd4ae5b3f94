"""`type: parquet`: the results and errors tables as Parquet files, typed as in DuckDB."""

from __future__ import annotations

from .export import FileOutput

__all__ = ["ParquetOutput"]


class ParquetOutput(FileOutput):
    kind = "parquet"
    copy_options = "FORMAT parquet"
