"""Labels: the expected values of some rows, read from a file through DuckDB as sources are.

A labels file holds the pipeline's key column (`source.key`) and one column per field it
labels: a top-level field (`total`), a nested one by its dotted path (`vendor.name`), a list as
a JSON array (`line_items`, `topics`), or a nested model as a JSON object (`vendor`), which
stands for its fields. Parquet, JSONL and DuckDB columns may hold the native STRUCT and LIST
values instead of JSON text. A null cell means "the expected value is null".

    labels.csv            CSV with a header; every cell is read as text and parsed by the
                          field's type, so `007` stays `007` for a text field
    labels.parquet        Parquet
    labels.jsonl          newline-delimited JSON (also .ndjson, .jsonl.gz)
    labels.duckdb:table   a table of a DuckDB file (or `--labels-table`)

Keys must be unique and not null, as in a source; the key is compared as text with the
output's (`1` matches the key 1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import SourceConfig
from ..errors import ConfigError, SourceError
from ..sources import open_source
from ..sources.base import FileSource, RelationSource
from ..sql import literal
from .paths import FieldPath

__all__ = ["Labels", "cell", "column_paths", "key_text", "labels_location", "read_labels"]

_DUCKDB_SUFFIXES = (".duckdb", ".db", ".ddb")
#: how a labels file's name ends -> the source type that reads it
_KINDS = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson.gz": "jsonl",
}


def key_text(value: Any) -> str:
    """A row key as text: how labels and output rows are matched (and how it is stored)."""
    return value if isinstance(value, str) else str(value)


def labels_location(spec: str | Path, table: str | None) -> tuple[Path, str | None]:
    """The labels file and, for a DuckDB file, its table: `file.duckdb:table` is split."""
    text = str(spec)
    head, sep, tail = text.rpartition(":")
    if sep and head.lower().endswith(_DUCKDB_SUFFIXES) and tail:
        if table is not None and table != tail:
            raise ConfigError(f"labels {text}: names table {tail!r}, but --labels-table {table!r}")
        return Path(head).resolve(), tail
    return Path(text).resolve(), table


class _CsvLabels(FileSource):
    def relation(self) -> str:
        # every cell as text: each is parsed by its field's type, so a label like `007` for a
        # text field is not read as the number 7
        return (
            f"read_csv({literal(str(self.path))}, header=true, delim=',', quote='\"', "
            "escape='\"', strict_mode=true, all_varchar=true)"
        )


@dataclass
class Labels:
    """The rows of a labels file: each key's cells by column name, in file order."""

    #: how reports and errors name the file (`path` or `path:table`)
    label: str
    key: str
    #: the field columns (the key column left out), in file order
    columns: list[str]
    #: (key as text, {column: value}) per row
    rows: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def _open(path: Path, table: str | None, key: str) -> RelationSource:
    name = path.name.lower()
    if table is not None or name.endswith(_DUCKDB_SUFFIXES):
        if table is None:
            raise ConfigError(
                f"labels {path}: a DuckDB file needs a table: {path}:TABLE or --labels-table"
            )
        config = SourceConfig(type="duckdb", path=path, key=key, table=table)
    else:
        kind = next((k for end, k in _KINDS.items() if name.endswith(end)), None)
        if kind is None:
            raise ConfigError(
                f"labels {path}: unknown kind of file; use .csv, .parquet, .jsonl or "
                "file.duckdb:table"
            )
        if kind == "csv":
            return _CsvLabels(SourceConfig(type="csv", path=path, key=key), path.parent)
        config = SourceConfig(type=kind, path=path, key=key)
    source = open_source(config, base_dir=path.parent)
    assert isinstance(source, RelationSource)  # every file source is one
    return source


def read_labels(spec: str | Path, *, table: str | None, key: str) -> Labels:
    """Read a labels file whose key column is `key`; ConfigError naming the file otherwise."""
    path, table = labels_location(spec, table)
    label = f"{path}:{table}" if table else str(path)
    try:
        source = _open(path, table, key)
        try:
            source.check_keys()
            # JSON-typed columns (JSONL values of mixed types) come as JSON text
            as_json = [c for c, t in source.types.items() if t == "JSON" and c != key]
            rows: list[tuple[str, dict[str, Any]]] = []
            for batch in source.batches(1000):
                for row in batch.to_pylist():
                    for c in as_json:
                        if row[c] is not None:
                            row[c] = json.loads(row[c])
                    rows.append((key_text(row.pop(key)), row))
            columns = [c for c in source.columns if c != key]
        finally:
            source.close()
    except SourceError as e:
        raise ConfigError(f"labels {e}", path=label) from e
    return Labels(label, key, columns, rows)


def column_paths(
    labels: Labels, paths: dict[str, FieldPath], model: str
) -> dict[str, tuple[str, tuple[str, ...]]]:
    """Which field path each labelled value is for: {path: (column, keys inside the column)}.

    A column named by a nested model's path holds objects: it stands for the model's fields
    that its objects give. Unknown columns and fields given twice are ConfigErrors.
    """
    out: dict[str, tuple[str, tuple[str, ...]]] = {}

    def add(path: str, column: str, inner: tuple[str, ...]) -> None:
        if path in out:
            raise ConfigError(
                f"labels {labels.label}: field {path!r} is given twice (columns "
                f"{out[path][0]!r} and {column!r})",
                path=labels.label,
            )
        out[path] = (column, inner)

    for column in labels.columns:
        spec = paths.get(column)
        if spec is None:
            known = ", ".join(p for p, s in paths.items() if not s.is_model)
            raise ConfigError(
                f"labels {labels.label}: column {column!r} is not a field of {model} "
                f"(fields: {known})",
                path=labels.label,
            )
        if not spec.is_model:
            add(column, column, ())
            continue
        for inner in _object_keys(labels, column, spec, paths):
            add(".".join((column, *inner)), column, inner)
    return out


def _object_keys(
    labels: Labels, column: str, spec: FieldPath, paths: dict[str, FieldPath]
) -> list[tuple[str, ...]]:
    """The field paths (relative to the column) that the objects of a model column give."""
    found: dict[tuple[str, ...], None] = {}

    def walk(value: Any, prefix: tuple[str, ...], key: str) -> None:
        where = ".".join((column, *prefix))
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None if value.strip() == "" else value
        if value is None:
            return
        if not isinstance(value, dict):
            raise ConfigError(
                f"labels {labels.label}: row {labels.key}={key}, column {column!r}: {where} "
                "holds a model, so it takes a JSON object",
                path=labels.label,
            )
        for k, v in value.items():
            sub = (*prefix, k)
            target = paths.get(".".join((column, *sub)))
            if target is None:
                raise ConfigError(
                    f"labels {labels.label}: row {labels.key}={key}, column {column!r}: "
                    f"{where} has no field {k!r}",
                    path=labels.label,
                )
            if target.is_model:
                walk(v, sub, key)
            else:
                found.setdefault(sub, None)

    for key, row in labels.rows:
        walk(row[column], (), key)
    if not found:
        # only nulls: every field of the model (of its nested models too) is expected null
        return [
            s.parts[len(spec.parts) :]
            for p, s in paths.items()
            if p.startswith(spec.path + ".")
            and not s.is_model
            and all(paths[".".join(s.parts[:i])].is_model for i in range(1, len(s.parts)))
        ]
    return list(found)


def cell(row: dict[str, Any], column: str, inner: tuple[str, ...]) -> Any:
    """The labelled value: a column's cell, or a key path inside the object it holds."""
    value = row[column]
    for k in inner:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else None
        if not isinstance(value, dict):
            return None
        value = value.get(k)
    return value
