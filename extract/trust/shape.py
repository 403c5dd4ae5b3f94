"""The shape the trust columns share: the schema mirrored, with one slot per leaf value.

`_confidence` and `_grounding` both mirror the output model: a nested model becomes a STRUCT of
its fields, a list a LIST of its item's shape, and every other value is a *leaf* that gets one
slot (a DOUBLE in `_confidence`, a grounding STRUCT in `_grounding`). What the table stores as
one opaque value (a dict, a union, a fixed tuple, a recursive model) is one leaf here too.

`mirror` walks a value of the wire form (parsed JSON: dicts keyed by field key, lists) along a
shape and calls a function per leaf, so both columns are built by the same walk.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel

from ..schema.tree import (
    Analysis,
    EnumNode,
    JsonNode,
    LiteralNode,
    MapNode,
    ModelNode,
    Node,
    NullableNode,
    Scalar,
    SeqNode,
    TupleNode,
    UnionNode,
)
from ..schema.types import analyze
from ..sql import ident

__all__ = [
    "Fields",
    "Items",
    "Leaf",
    "Shape",
    "field_path",
    "leaf_paths",
    "mirror",
    "model_shape",
    "shape_arrow",
    "shape_ddl",
    "value_at",
]


@dataclass(frozen=True)
class Leaf:
    """One value with one slot. `kind`: a Scalar kind (str int float decimal date ...), `enum`
    (an Enum or Literal), `bool`, or `json` (a value stored whole: dict, union, tuple, recursive
    model)."""

    kind: str
    #: the values allowed, for `enum` leaves
    choices: tuple[Any, ...] = ()


@dataclass(frozen=True)
class Fields:
    """A nested model: its fields' keys (the wire and column names) and shapes, in order."""

    fields: tuple[tuple[str, Shape], ...]


@dataclass(frozen=True)
class Items:
    """A list (or set): each item's shape."""

    item: Shape


Shape = Union[Leaf, Fields, Items]  # noqa: UP007 - a runtime alias


class _Shaper:
    def __init__(self, analysis: Analysis):
        self.a = analysis

    def node(self, node: Node) -> Shape:
        # Json[X] travels and is stored as X itself, so it mirrors as X
        if isinstance(node, NullableNode | JsonNode):
            return self.node(node.inner)
        if isinstance(node, Scalar):
            return Leaf(node.kind)
        if isinstance(node, LiteralNode | EnumNode):
            kept = tuple(v for v in node.values if v is not None)
            if kept and all(isinstance(v, bool) for v in kept):
                return Leaf("bool", kept)
            return Leaf("enum", kept)
        if isinstance(node, SeqNode):
            return Items(self.node(node.item))
        if isinstance(node, ModelNode):
            if node.cls in self.a.recursive or not self.a.models[node.cls].fields:
                return Leaf("json")
            return self.model(node.cls)
        if isinstance(node, TupleNode | MapNode | UnionNode):
            return Leaf("json")
        raise AssertionError(node)  # pragma: no cover - the node union is closed

    def model(self, cls: type[Any]) -> Fields:
        return Fields(tuple((f.key, self.node(f.node)) for f in self.a.models[cls].fields))


def model_shape(model: type[BaseModel] | Analysis) -> Fields:
    """The mirror of a model's top-level fields (one slot per leaf value)."""
    analysis = model if isinstance(model, Analysis) else analyze(model)
    return _Shaper(analysis).model(analysis.root)


def shape_ddl(shape: Shape, leaf: str) -> str:
    """The DuckDB type of a mirror whose leaves have type `leaf`: `STRUCT("a" DOUBLE, ...)`."""
    if isinstance(shape, Leaf):
        return leaf
    if isinstance(shape, Items):
        return f"{shape_ddl(shape.item, leaf)}[]"
    return "STRUCT(" + ", ".join(f"{ident(k)} {shape_ddl(s, leaf)}" for k, s in shape.fields) + ")"


def shape_arrow(shape: Shape, leaf: Any) -> Any:
    """The Arrow type of a mirror whose leaves have Arrow type `leaf`."""
    import pyarrow as pa

    if isinstance(shape, Leaf):
        return leaf
    if isinstance(shape, Items):
        return pa.list_(shape_arrow(shape.item, leaf))
    return pa.struct([(k, shape_arrow(s, leaf)) for k, s in shape.fields])


LeafFunction = Callable[[Leaf, Any, str], Any]


def mirror(shape: Shape, value: Any, leaf: LeafFunction, path: str = "") -> Any:
    """`value` (wire form) mirrored along `shape`: `leaf(leaf_shape, value, path)` per leaf.

    A null model or list mirrors to None; a leaf is called for null values too (its slot may
    still say something, such as how sure the model was that the value is absent). Paths are
    dotted field keys with list indexes: `items[2].name`.
    """
    if isinstance(shape, Leaf):
        return leaf(shape, value, path)
    if isinstance(shape, Items):
        if not isinstance(value, list):
            return None
        return [mirror(shape.item, v, leaf, f"{path}[{i}]") for i, v in enumerate(value)]
    if not isinstance(value, dict):
        return None
    prefix = f"{path}." if path else ""
    return {k: mirror(s, value.get(k), leaf, prefix + k) for k, s in shape.fields}


def leaf_paths(shape: Shape, path: str = "") -> dict[str, Leaf]:
    """Every leaf by its dotted path without list indexes (`line_items.description`): the
    form a pipeline file names fields in."""
    if isinstance(shape, Leaf):
        return {path: shape}
    if isinstance(shape, Items):
        return leaf_paths(shape.item, path)
    out: dict[str, Leaf] = {}
    prefix = f"{path}." if path else ""
    for k, s in shape.fields:
        out.update(leaf_paths(s, prefix + k))
    return out


def field_path(path: str) -> str:
    """A value's path without its list indexes: `items[2].name` -> `items.name`."""
    return _INDEX.sub("", path)


def value_at(value: Any, path: str) -> Any:
    """The value at a path that `mirror` gave (`items[2].name`) in a wire-form value."""
    for part in _PART.finditer(path):
        name, index = part.group(1), part.group(2)
        if name is not None:
            value = value.get(name) if isinstance(value, dict) else None
        elif isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            value = None
    return value


_INDEX = re.compile(r"\[\d+\]")
# a field key (any characters but . and [) or a list index
_PART = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
