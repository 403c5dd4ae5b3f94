"""The wire codec of compiled schemas: the strict-mode wire form back to model input, and back.

`extract.schema` rewrites what strict mode cannot say directly (see its docstring); this module
holds the two directions of that rewrite. `Decoders` builds, from the `Analysis` of a model, one
decoder that turns a parsed reply into what Pydantic reads, touching only what was rewritten (a
`dict[K, V]` sent as a list of `{"key": K, "value": V}` objects becomes a dict again, a duplicate
key: last wins; a mixed tuple sent as `{"0": a, "1": b}` becomes `[a, b]`; a `Json[X]` value
becomes its JSON text). `Encoder` is the inverse: the wire form of an instance, walked along the
type tree so that every record is keyed exactly as its schema says (aliases, AliasChoices,
AliasPath). With `maps="objects"` it gives the JSON a JSON column stores instead: dicts stay
objects and tuples stay arrays.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import ipaddress
import json
import uuid
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, RootModel
from pydantic.networks import AnyUrl
from pydantic_core import to_jsonable_python

from .tree import (
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

__all__ = ["Decoder", "Decoders", "Encoder"]

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
                if not needs[cls] and any(
                    f.null_is_missing or self._needs(f.node, needs) for f in spec.fields
                ):
                    needs[cls] = changed = True
        self.needs = needs

    def _needs(self, node: Node, needs: dict[type[BaseModel], bool]) -> bool:
        if isinstance(node, MapNode | JsonNode):
            return True
        if isinstance(node, TupleNode) and node.as_object:
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
        fields = self.a.models[cls].fields
        plan = [(f.key, d) for f in fields if (d := self.node(f.node))]
        # a TypedDict key that may be missing was answered as null: Pydantic wants it absent
        absent = [f.key for f in fields if f.null_is_missing]

        def decode_model(v: Any) -> Any:
            if not isinstance(v, dict):
                return v
            v = dict(v)
            for key in absent:
                if key in v and v[key] is None:
                    del v[key]
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
            inner = self.node(node.inner)
            if inner is None:
                return None
            decode_inner: Decoder = inner

            # None is the null branch itself: it must not reach a Json decoder, which would
            # turn it into the text "null"
            return lambda v: None if v is None else decode_inner(v)
        if isinstance(node, SeqNode):
            d = self.node(node.item)
            if d is None:
                return None
            return lambda v: [d(x) for x in v] if isinstance(v, list) else v
        if isinstance(node, JsonNode):
            inner = self.node(node.inner)

            def decode_json(v: Any) -> Any:
                return json.dumps(inner(v) if inner else v, ensure_ascii=False)

            return decode_json
        if isinstance(node, TupleNode) and node.as_object:
            ds = [self.node(i) for i in node.items]
            keys = [str(i) for i in range(len(ds))]

            def decode_tuple(v: Any) -> Any:
                if not (isinstance(v, dict) and set(v) == set(keys)):
                    return v  # not the wire shape: let Pydantic report it
                return [d(v[k]) if d else v[k] for d, k in zip(ds, keys, strict=True)]

            return decode_tuple
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


_STRINGS: dict[str, tuple[type, ...]] = {
    "str": (str,),
    "email": (str,),
    "url": (AnyUrl, str),
    "http_url": (AnyUrl, str),
    "uuid": (uuid.UUID,),
    "ipv4": (ipaddress.IPv4Address,),
    "ipv6": (ipaddress.IPv6Address,),
    "ip": (ipaddress.IPv4Address, ipaddress.IPv6Address),
    "decimal": (decimal.Decimal,),
    "date": (dt.date,),
    "datetime": (dt.datetime,),
    "datetime_aware": (dt.datetime,),
    "datetime_naive": (dt.datetime,),
    "time": (dt.time,),
    "duration": (dt.timedelta,),
    "float": (float, int),
    "bool": (bool,),
}


def unroot(value: Any) -> Any:
    """A RootModel's value; anything else as it is (a RootModel field is read as its root)."""
    while isinstance(value, RootModel):
        value = value.root
    return value


def _ordered(value: Any) -> list[Any]:
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    return list(value)


class Encoder:
    """Instances to JSON-able data, walked along the type tree of one `Analysis`.

    `maps="pairs"` gives the wire form (what `compile_schema`'s schema describes and its decoder
    inverts); `maps="objects"` gives the JSON a JSON column stores: dicts as objects (keys as
    text), tuples as arrays, records keyed as on the wire.
    """

    def __init__(self, analysis: Analysis, *, maps: str = "pairs"):
        self.a = analysis
        self.pairs = maps == "pairs"

    def record(self, cls: type[Any], value: Any) -> Any:
        """The encoded form of an instance of the record class `cls`."""
        return self.value(ModelNode(cls), value)

    def value(self, node: Node, v: Any) -> Any:
        v = unroot(v)
        if v is None:
            return None
        if isinstance(node, NullableNode | JsonNode):
            return self.value(node.inner, v)
        if isinstance(node, ModelNode):
            spec = self.a.models[node.cls]
            return {f.key: self.value(f.node, spec.get(v, f.name)) for f in spec.fields}
        if isinstance(node, SeqNode):
            return [self.value(node.item, x) for x in _ordered(v)]
        if isinstance(node, TupleNode):
            items = [self.value(n, x) for n, x in zip(node.items, v, strict=False)]
            if node.as_object and self.pairs:
                return {str(i): x for i, x in enumerate(items)}
            return items
        if isinstance(node, MapNode):
            if self.pairs:
                return [
                    {"key": self.value(node.key, k), "value": self.value(node.value, x)}
                    for k, x in v.items()
                ]
            return {str(self.value(node.key, k)): self.value(node.value, x) for k, x in v.items()}
        if isinstance(node, UnionNode):
            for member in node.members:
                if self.fits(member, v):
                    return self.value(member, v)
            return self.generic(v)
        if isinstance(node, LiteralNode | EnumNode):
            return v.value if isinstance(v, enum.Enum) else v
        return self.scalar(v)

    @staticmethod
    def scalar(v: Any) -> Any:
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, decimal.Decimal):
            return format(v, "f")
        if isinstance(v, str | int | float | bool):
            return v
        return to_jsonable_python(v)

    def fits(self, node: Node, v: Any) -> bool:
        """Whether `v` is a value of `node`'s type: picks a union member for an instance."""
        if isinstance(node, NullableNode | JsonNode):
            return v is None or self.fits(node.inner, v)
        if isinstance(node, Scalar):
            if node.kind == "int":
                return isinstance(v, int) and not isinstance(v, bool)
            if node.kind in ("float",):
                return isinstance(v, float | int) and not isinstance(v, bool)
            if node.kind == "date":
                return isinstance(v, dt.date) and not isinstance(v, dt.datetime)
            if node.kind == "null":
                return v is None
            return isinstance(v, _STRINGS.get(node.kind, (str,)))
        if isinstance(node, EnumNode):
            return isinstance(v, node.cls)
        if isinstance(node, LiteralNode):
            return any(v == x and type(v) is type(x) for x in node.values)
        if isinstance(node, ModelNode):
            spec = self.a.models[node.cls]
            if spec.kind == "typeddict":
                required = {f.name for f in spec.fields if not f.null_is_missing}
                return isinstance(v, dict) and required <= set(v) <= {f.name for f in spec.fields}
            return isinstance(v, node.cls)
        if isinstance(node, SeqNode):
            return isinstance(v, list | set | frozenset | collections.deque) or (
                isinstance(v, tuple) and not hasattr(v, "_fields")
            )
        if isinstance(node, TupleNode):
            return isinstance(v, tuple) and len(v) == len(node.items)
        if isinstance(node, MapNode):
            return isinstance(v, dict)
        if isinstance(node, UnionNode):
            return any(self.fits(m, v) for m in node.members)
        raise AssertionError(node)  # pragma: no cover - the node union is closed

    def generic(self, v: Any) -> Any:
        """A value no union member claimed: encoded by its own type."""
        for cls, spec in self.a.models.items():
            if spec.kind != "typeddict" and isinstance(v, cls):
                return self.value(ModelNode(cls), v)
        if isinstance(v, dict):
            if self.pairs:
                return [{"key": self.generic(k), "value": self.generic(x)} for k, x in v.items()]
            return {str(self.generic(k)): self.generic(x) for k, x in v.items()}
        if isinstance(v, list | tuple | set | frozenset | collections.deque):
            return [self.generic(x) for x in _ordered(v)]
        return self.scalar(v)
