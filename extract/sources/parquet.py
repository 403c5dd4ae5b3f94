"""`type: parquet`: a Parquet file."""

from __future__ import annotations

from ..sql import literal
from .base import FileSource

__all__ = ["ParquetSource"]


class ParquetSource(FileSource):
    def relation(self) -> str:
        return f"read_parquet({literal(str(self.path))})"
