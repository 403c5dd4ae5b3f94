"""`type: csv`: a CSV file with a header row."""

from __future__ import annotations

from ..sql import literal
from .base import FileSource

__all__ = ["CsvSource"]


class CsvSource(FileSource):
    def relation(self) -> str:
        # An explicit dialect: the sniffer would otherwise read a broken file as one column.
        # A small read buffer (still four times DuckDB's longest line): memory stays flat.
        return (
            f"read_csv({literal(str(self.path))}, header=true, delim=',', quote='\"', "
            "escape='\"', strict_mode=true, buffer_size=8388608)"
        )
