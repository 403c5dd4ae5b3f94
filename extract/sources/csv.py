"""`type: csv`: a CSV file with a header row."""

from __future__ import annotations

from pathlib import Path

from ..config import SourceConfig
from ..sql import literal
from .base import RelationSource, existing_file

__all__ = ["CsvSource"]


class CsvSource(RelationSource):
    def __init__(self, config: SourceConfig, base_dir: Path):
        path = existing_file(config)
        self.path = path
        super().__init__(config, label=str(path), base_dir=path.parent)

    def relation(self) -> str:
        # An explicit dialect: the sniffer would otherwise read a broken file as one column.
        # A small read buffer (still four times DuckDB's longest line): memory stays flat.
        return (
            f"read_csv({literal(str(self.path))}, header=true, delim=',', quote='\"', "
            "escape='\"', strict_mode=true, buffer_size=8388608)"
        )
