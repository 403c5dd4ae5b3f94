"""Finished rows as Arrow tables, the form DuckDB inserts a batch from.

Each table is built a column at a time from the whole batch (`pa.array` over a list): a few
microseconds a row. Only the columns asked for are built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from ..results import RowResult
from ..schema import Column, to_arrow
from ..trust.columns import trust_arrays
from ..trust.shape import Fields
from .tables import CACHE_COLUMNS, ERROR_COLUMNS, PROVENANCE, Spec

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["cache_frame", "failed_frame", "keys_frame", "ok_frame"]

_ARROW: dict[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "DOUBLE": pa.float64(),
    "TIMESTAMPTZ": pa.timestamp("us", tz="UTC"),
}


def _column(spec: Spec, rs: Sequence[RowResult], constants: dict[str, Any]) -> pa.Array:
    kind = _ARROW[spec.duckdb_type]
    if spec.get is None:
        return pa.array([constants.get(spec.name)] * len(rs), type=kind)
    return pa.array([spec.get(r) for r in rs], type=kind)


def keys_frame(key: str, rs: Sequence[RowResult]) -> pa.Table:
    return pa.table({key: [r.key for r in rs]})


def ok_frame(
    key: str,
    rs: Sequence[RowResult],
    columns: list[Column],
    shape: Fields,
    constants: dict[str, Any],
) -> pa.Table:
    """Validated rows: key, typed fields, trust columns, provenance."""
    instances: list[BaseModel] = [r.instance for r in rs if r.instance is not None]
    data: dict[str, Any] = {key: [r.key for r in rs]}
    data.update(to_arrow(instances, columns))
    data.update(trust_arrays(shape, rs))
    for spec in PROVENANCE:
        data[spec.name] = _column(spec, rs, {**constants, "_status": "ok"})
    return pa.table(data)


def failed_frame(key: str, rs: Sequence[RowResult], constants: dict[str, Any]) -> pa.Table:
    """Failed rows: key, reason, last output, provenance."""
    data: dict[str, Any] = {key: [r.key for r in rs]}
    for spec in ERROR_COLUMNS:
        data[spec.name] = _column(spec, rs, constants)
    return pa.table(data)


def cache_frame(rs: Sequence[RowResult]) -> pa.Table:
    """Validated outputs by request hash, for `_extract_cache`."""
    outputs = [r.instance.model_dump_json() if r.instance is not None else None for r in rs]
    trust = [
        None
        if r.confidence is None
        else orjson.dumps(
            {"confidence": r.confidence, "margins": r.margins, "min_confidence": r.min_confidence}
        ).decode()
        for r in rs
    ]
    data: dict[str, Any] = {}
    for spec in CACHE_COLUMNS:
        if spec.name == "output":
            data[spec.name] = pa.array(outputs, type=pa.string())
        elif spec.name == "trust":
            data[spec.name] = pa.array(trust, type=pa.string())
        else:
            data[spec.name] = _column(spec, rs, {})
    return pa.table(data)
