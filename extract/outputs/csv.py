"""`type: csv`: the results and errors tables as CSV files with a header.

CSV has no nested types: STRUCT, LIST, MAP and JSON columns are written as JSON text.
"""

from __future__ import annotations

from ..sql import ident
from .export import FileOutput

__all__ = ["CsvOutput"]


def _is_nested(data_type: str) -> bool:
    return data_type.endswith("]") or data_type.startswith(("STRUCT", "MAP", "JSON", "UNION"))


class CsvOutput(FileOutput):
    kind = "csv"
    copy_options = "FORMAT csv, HEADER true"

    def select_list(self, columns: list[tuple[str, str]]) -> str:
        return ", ".join(
            f"CAST(to_json({ident(n)}) AS VARCHAR) AS {ident(n)}" if _is_nested(t) else ident(n)
            for n, t in columns
        )
