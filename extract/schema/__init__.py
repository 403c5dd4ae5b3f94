"""From a Pydantic model to what is sent and what is stored.

    types.py           the one reader of a model's types: the type tree both sides share
    compiler.py        the tree as a strict `response_format` (`compile_schema`, `CompiledSchema`)
    wire.py            decoding rewritten types (dicts, tuples, decimals) back into the model
    strict_limits.py   strict mode's size limits (properties, depth, enum values, characters)
    patterns.py        string lengths as a strict-mode pattern
    lint.py            what strict mode rewrites, weakens or refuses, per field (`check_model`)
    columns.py         the tree as typed table columns: DuckDB DDL and Arrow types
    loader.py          importing the model a pipeline names (`module:Class`, `file.py:Class`)

Nothing here imports pyarrow, polars, duckdb or aiohttp: `extract schema` stays fast.
"""

from __future__ import annotations

from .columns import Column, columns_ddl, insert_select, model_columns, to_arrow
from .compiler import CompiledSchema, compile_schema, schema_problems
from .lint import Note, check_model, has_refusals, render_notes
from .loader import load_model

__all__ = [
    "Column",
    "CompiledSchema",
    "Note",
    "check_model",
    "columns_ddl",
    "compile_schema",
    "has_refusals",
    "insert_select",
    "load_model",
    "model_columns",
    "render_notes",
    "schema_problems",
    "to_arrow",
]
