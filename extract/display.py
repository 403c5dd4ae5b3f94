"""Rows of a query as text for a terminal, or as JSON lines for scripts."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

__all__ = ["json_lines", "text_table"]

#: characters of a cell shown in a text table (the JSON form keeps everything)
CELL_CHARS = 60


def _cell(value: Any, limit: int | None = CELL_CHARS) -> str:
    return ("" if value is None else str(value)).replace("\n", " ")[:limit]


def text_table(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str] | None = None,
    *,
    cell_chars: int | None = CELL_CHARS,
) -> str:
    """Aligned columns under a header line; each cell on one line, cut to `cell_chars`
    (None: never cut, for text that is the point of the table, such as a linter's advice)."""
    names = list(columns if columns is not None else (rows[0] if rows else []))
    cells = [[_cell(row.get(n), cell_chars) for n in names] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    lines = ["  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def json_lines(rows: Sequence[dict[str, Any]]) -> str:
    """One JSON object per row."""
    return "\n".join(json.dumps(row, default=str) for row in rows)
