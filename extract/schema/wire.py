"""The wire codec of compiled schemas: the strict-mode wire form back to model input, and back.

`extract.schema` rewrites what strict mode cannot say directly (see its docstring); this module
holds the two directions of that rewrite. `Decoders` builds, from the `Analysis` of a model, one
decoder that turns a parsed reply into what `model_validate` accepts, touching only what was
rewritten (a `dict[K, V]` sent as a list of `{"key": K, "value": V}` objects becomes a dict again;
a duplicate key: last wins). `encode` is the inverse: the wire form of a model instance.
"""

from __future__ import annotations

import decimal
import enum
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic_core import to_jsonable_python

from .types import (
    Analysis,
    LiteralNode,
    MapNode,
    ModelNode,
    Node,
    NullableNode,
    SeqNode,
    TupleNode,
    UnionNode,
)

__all__ = ["Decoder", "Decoders", "encode"]

Decoder = Callable[[Any], Any]


# --------------------------------------------------------------------------------------------
# decoding (wire -> what model_validate accepts) and encoding (instance -> wire)


class Decoders:
    """Build decoders that only touch what was rewritten; None means "pass through"."""

    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.table: dict[type[BaseModel], Decoder | None] = {}
        needs = {cls: False for cls in analysis.models}
        changed = True
        # fixed point: a model needs decoding if a field does, through any depth of recursion
        while changed:
            changed = False
            for cls, spec in analysis.models.items():
                if not needs[cls] and any(self._needs(f.node, needs) for f in spec.fields):
                    needs[cls] = changed = True
        self.needs = needs

    def _needs(self, node: Node, needs: dict[type[BaseModel], bool]) -> bool:
        if isinstance(node, MapNode):
            return True
        if isinstance(node, ModelNode):
            return needs[node.cls]
        if isinstance(node, NullableNode):
            return self._needs(node.inner, needs)
        if isinstance(node, SeqNode):
            return self._needs(node.item, needs)
        if isinstance(node, TupleNode | UnionNode):
            parts = node.items if isinstance(node, TupleNode) else node.members
            return any(self._needs(p, needs) for p in parts)
        return False

    def root(self) -> Decoder | None:
        for cls in self.a.models:
            self.table[cls] = self._model(cls) if self.needs[cls] else None
        return self.table[self.a.root]

    def _model(self, cls: type[BaseModel]) -> Decoder:
        plan = [(f.key, d) for f in self.a.models[cls].fields if (d := self.node(f.node))]

        def decode_model(v: Any) -> Any:
            if not isinstance(v, dict):
                return v
            v = dict(v)
            for key, d in plan:
                if key in v:
                    v[key] = d(v[key])
            return v

        return decode_model

    def node(self, node: Node) -> Decoder | None:
        if isinstance(node, ModelNode):
            if not self.needs[node.cls]:
                return None
            table, cls = self.table, node.cls
            return lambda v: table[cls](v)  # type: ignore[misc]  # filled before first call
        if isinstance(node, NullableNode):
            return self.node(node.inner)  # every decoder passes None through unchanged
        if isinstance(node, SeqNode):
            d = self.node(node.item)
            if d is None:
                return None
            return lambda v: [d(x) for x in v] if isinstance(v, list) else v
        if isinstance(node, TupleNode):
            ds = [self.node(i) for i in node.items]
            if not any(ds):
                return None
            return lambda v: (
                [d(x) if d else x for d, x in zip(ds, v, strict=False)]
                if isinstance(v, list)
                else v
            )
        if isinstance(node, MapNode):
            return _map_decoder(self.node(node.value))
        if isinstance(node, UnionNode):
            return self._union(node)
        return None

    def _union(self, node: UnionNode) -> Decoder | None:
        decoders = [(m, self.node(m)) for m in node.members]
        if not any(d for _, d in decoders):
            return None
        # objects: pick the member model by its discriminator value, else by its exact key set
        by_tag: dict[Any, Decoder | None] = {}
        tag_key: str | None = None
        by_keys: list[tuple[frozenset[str], Decoder | None]] = []
        others: list[Decoder] = []
        for m, d in decoders:
            if isinstance(m, ModelNode):
                spec = self.a.models[m.cls]
                by_keys.append((frozenset(f.key for f in spec.fields), d))
                for f in spec.fields:
                    if f.name == node.discriminator and isinstance(f.node, LiteralNode):
                        tag_key = f.key
                        for value in f.node.values:
                            by_tag[value] = d
            elif d is not None:
                others.append(d)
        # a key/value list is recognised by its shape, so map decoders are tried first
        others.sort(key=lambda d: not getattr(d, "is_map", False))

        def decode_union(v: Any) -> Any:
            if isinstance(v, dict):
                if tag_key is not None and tag_key in v and v[tag_key] in by_tag:
                    d = by_tag[v[tag_key]]
                    return d(v) if d else v
                keys = v.keys()
                for ks, d in by_keys:
                    if ks == keys:
                        return d(v) if d else v
                return v
            for d in others:
                out = d(v)
                if out is not v:
                    return out
            return v

        return decode_union


def _map_decoder(value_decoder: Decoder | None) -> Decoder:
    def decode_map(v: Any) -> Any:
        if not isinstance(v, list):
            return v
        out = {}
        for item in v:
            if not (isinstance(item, dict) and "key" in item and "value" in item):
                return v  # not the wire shape: let Pydantic report it
            value = item["value"]
            out[item["key"]] = value_decoder(value) if value_decoder else value
        return out

    decode_map.is_map = True  # type: ignore[attr-defined]
    return decode_map


def encode(value: Any, keys: dict[type[BaseModel], list[tuple[str, str]]]) -> Any:
    if isinstance(value, BaseModel):
        if isinstance(value, RootModel):
            return encode(value.root, keys)
        plan = keys.get(type(value))
        if plan is None:
            plan = [
                (
                    n,
                    (f.alias or n)
                    if not isinstance(f.validation_alias, str)
                    else f.validation_alias,
                )
                for n, f in type(value).model_fields.items()
            ]
        return {key: encode(getattr(value, name), keys) for name, key in plan}
    if isinstance(value, dict):
        return [{"key": encode(k, keys), "value": encode(v, keys)} for k, v in value.items()]
    if isinstance(value, list | tuple):
        return [encode(v, keys) for v in value]
    if isinstance(value, set | frozenset):
        items = [encode(v, keys) for v in value]
        try:
            return sorted(items)
        except TypeError:
            return items
    if isinstance(value, enum.Enum):
        return encode(value.value, keys)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return to_jsonable_python(value)
