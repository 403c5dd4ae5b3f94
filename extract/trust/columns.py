"""The trust columns of an output table, after the schema's own columns:

_confidence      the schema mirrored, a DOUBLE per leaf value: the probability of the tokens
                 that wrote it (null without logprobs)
_min_confidence  the lowest of them
_margins         MAP(path, DOUBLE): for enum and boolean values, how far the chosen token's
                 probability was ahead of the runner-up's
_grounding       the schema mirrored, a STRUCT(status, "column", start, "end") per string,
                 number and date value: where in the input text it was found
_ungrounded      how many of those values were not found
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..results import RowResult
from ..sql import ident
from .shape import Fields, shape_arrow, shape_ddl

__all__ = ["GROUNDING_LEAF", "trust_arrays", "trust_ddl"]

GROUNDING_LEAF = 'STRUCT(status VARCHAR, "column" VARCHAR, "start" INTEGER, "end" INTEGER)'


def trust_ddl(shape: Fields) -> str:
    """The trust columns' part of a CREATE TABLE column list."""
    columns = [
        ("_confidence", shape_ddl(shape, "DOUBLE")),
        ("_min_confidence", "DOUBLE"),
        ("_margins", "MAP(VARCHAR, DOUBLE)"),
        ("_grounding", shape_ddl(shape, GROUNDING_LEAF)),
        ("_ungrounded", "INTEGER"),
    ]
    return ", ".join(f"{ident(name)} {kind}" for name, kind in columns)


def _grounding_leaf() -> Any:
    import pyarrow as pa

    return pa.struct(
        [("status", pa.string()), ("column", pa.string()), ("start", pa.int32()),
         ("end", pa.int32())]
    )  # fmt: skip


def trust_arrays(shape: Fields, rs: Sequence[RowResult]) -> dict[str, Any]:
    """The trust columns of validated rows, as Arrow arrays."""
    import pyarrow as pa

    return {
        "_confidence": pa.array([r.confidence for r in rs], type=shape_arrow(shape, pa.float64())),
        "_min_confidence": pa.array([r.min_confidence for r in rs], type=pa.float64()),
        "_margins": pa.array(
            [None if r.margins is None else list(r.margins.items()) for r in rs],
            type=pa.map_(pa.string(), pa.float64()),
        ),
        "_grounding": pa.array(
            [r.grounding for r in rs], type=shape_arrow(shape, _grounding_leaf())
        ),
        "_ungrounded": pa.array([r.ungrounded for r in rs], type=pa.int32()),
    }
