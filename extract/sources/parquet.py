"""`type: parquet`: a Parquet file."""

from __future__ import annotations

from pathlib import Path

from ..config import SourceConfig
from ..sql import literal
from .base import RelationSource, existing_file

__all__ = ["ParquetSource"]


class ParquetSource(RelationSource):
    def __init__(self, config: SourceConfig, base_dir: Path):
        path = existing_file(config)
        self.path = path
        super().__init__(config, label=str(path), base_dir=path.parent)

    def relation(self) -> str:
        return f"read_parquet({literal(str(self.path))})"
