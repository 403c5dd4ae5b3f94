"""SQL text helpers for DuckDB: the one place identifiers and string literals are quoted."""

from __future__ import annotations

__all__ = ["first_line", "ident", "literal"]


def ident(name: str) -> str:
    """A DuckDB identifier, always quoted (inner double quotes doubled)."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A DuckDB string literal."""
    return "'" + text.replace("'", "''") + "'"


def first_line(error: BaseException) -> str:
    """The first line of an error's text (DuckDB's messages run on with context lines)."""
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__
