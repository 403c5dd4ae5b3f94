"""`type: jsonl`: newline-delimited JSON, one object a line; `.jsonl.gz` (gzip) too.

Read by DuckDB's `read_json`: column types are inferred from the whole file; a key that is
sometimes a number and sometimes a string (DuckDB: JSON) is read as its text, VARCHAR. Nested
objects become STRUCTs and a
template renders them as JSON text. A line that is not a JSON object is an error naming the file.
"""

from __future__ import annotations

from pathlib import Path

from ..config import SourceConfig
from ..sql import ident, literal
from .base import FileSource

__all__ = ["JsonlSource"]


class JsonlSource(FileSource):
    #: read_json holds two buffers of its longest object's size limit (16 MB) at once
    memory_limit = "64MB"

    def __init__(self, config: SourceConfig, base_dir: Path):
        super().__init__(config, base_dir)
        if self.types[self.key] == "JSON":
            k = ident(self.key)
            self._sql = (
                f"SELECT * REPLACE (json_extract_string({k}, '$') AS {k}) FROM ({self._sql})"
            )
            self.types[self.key] = "VARCHAR"

    def relation(self) -> str:
        # sample_size=-1: infer types from every line, so a late line cannot break the run
        return (
            f"read_json({literal(str(self.path))}, format='newline_delimited', "
            "records=true, sample_size=-1, compression='auto_detect')"
        )
