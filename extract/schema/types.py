"""Read a Pydantic model into a small tree of types that strict mode and the table side both use.

`analyze(model)` walks every field once and either returns an `Analysis` (one `ModelSpec` per
model class reached, each field reduced to a `Node`) or raises `SchemaError` naming the field path
(`Ticket.customer.tags`) and why strict structured output cannot express it. `compiler` turns the
tree into a strict JSON schema plus a decoder; `columns` turns it into DuckDB and Arrow types.
Keeping one reader means the wire form and the table can never disagree about a type.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import ipaddress
import re
import types
import typing
import uuid
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence as AbcSequence
from collections.abc import Set as AbcSet
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import AwareDatetime, BaseModel, EmailStr, NaiveDatetime, RootModel
from pydantic.fields import FieldInfo
from pydantic.networks import AnyUrl

from ..errors import SchemaError

__all__ = [
    "Analysis",
    "Constraints",
    "EnumNode",
    "FieldSpec",
    "LiteralNode",
    "MapNode",
    "ModelNode",
    "ModelSpec",
    "Node",
    "NullableNode",
    "Scalar",
    "SeqNode",
    "TupleNode",
    "UnionNode",
    "analyze",
    "decimal_digits",
]

#: precision and scale of a Decimal that declares neither max_digits nor decimal_places
DEFAULT_DECIMAL = (38, 9)

_CONSTRAINT_NAMES = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "min_length",
    "max_length",
    "pattern",
    "max_digits",
    "decimal_places",
)


@dataclass(frozen=True)
class Constraints:
    """The Pydantic constraints found on one type (from `Field(...)`, `Annotated`, `con*()`)."""

    gt: Any = None
    ge: Any = None
    lt: Any = None
    le: Any = None
    multiple_of: Any = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    max_digits: int | None = None
    decimal_places: int | None = None

    def merged(self, other: Constraints) -> Constraints:
        values = {
            n: getattr(other, n) if getattr(other, n) is not None else getattr(self, n)
            for n in _CONSTRAINT_NAMES
        }
        return Constraints(**values)


NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar. `kind` is one of: str int float bool null date datetime datetime_aware
    datetime_naive time uuid email url ipv4 ipv6 decimal."""

    kind: str
    constraints: Constraints = NO_CONSTRAINTS


@dataclass(frozen=True)
class LiteralNode:
    """`Literal[...]`: the JSON values allowed (Enum members already reduced to their values)."""

    values: tuple[Any, ...]


@dataclass(frozen=True)
class EnumNode:
    """An `enum.Enum` subclass; `values` are its members' values in definition order."""

    cls: type[enum.Enum]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class SeqNode:
    """`list[X]`, `set[X]`, `tuple[X, ...]`. `unique` for sets."""

    item: Node
    constraints: Constraints = NO_CONSTRAINTS
    unique: bool = False


@dataclass(frozen=True)
class TupleNode:
    """A fixed-length tuple `tuple[X, Y, ...]`."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class MapNode:
    """`dict[K, V]`; keys are str, int, Enum or string Literal."""

    key: Node
    value: Node
    constraints: Constraints = NO_CONSTRAINTS


@dataclass(frozen=True)
class ModelNode:
    """A nested Pydantic model; its fields are in `Analysis.models[cls]`."""

    cls: type[BaseModel]


@dataclass(frozen=True)
class UnionNode:
    """A union of two or more non-null types; `discriminator` is the field name that tells
    model members apart, when the field declares one."""

    members: tuple[Node, ...]
    discriminator: str | None = None


@dataclass(frozen=True)
class NullableNode:
    """`X | None`."""

    inner: Node


Node = Union[  # noqa: UP007 - a runtime alias, so the PEP 604 form would need quoting anyway
    Scalar, LiteralNode, EnumNode, SeqNode, TupleNode, MapNode, ModelNode, UnionNode, NullableNode
]


@dataclass(frozen=True)
class FieldSpec:
    """One model field: attribute `name`, wire and column `key` (its alias, else its name)."""

    name: str
    key: str
    node: Node
    description: str | None


@dataclass
class ModelSpec:
    """One model class: its `$defs` name, docstring and fields in declaration order."""

    cls: type[BaseModel]
    def_name: str
    description: str | None
    fields: list[FieldSpec] = field(default_factory=list)


@dataclass
class Analysis:
    """Every model reached from `root`, and which of them take part in a reference cycle."""

    root: type[BaseModel]
    models: dict[type[BaseModel], ModelSpec]
    recursive: set[type[BaseModel]]


_SCALARS: dict[Any, str] = {
    str: "str",
    int: "int",
    float: "float",
    bool: "bool",
    type(None): "null",
    dt.date: "date",
    dt.datetime: "datetime",
    AwareDatetime: "datetime_aware",
    NaiveDatetime: "datetime_naive",
    dt.time: "time",
    uuid.UUID: "uuid",
    EmailStr: "email",
    decimal.Decimal: "decimal",
    ipaddress.IPv4Address: "ipv4",
    ipaddress.IPv6Address: "ipv6",
}

_STRING_CONSTRAINT_KINDS = {"str", "email", "url"}


def _constraints_of(metadata: list[Any] | tuple[Any, ...]) -> tuple[Constraints, Any, str | None]:
    """Collect constraints, a discriminator and a description from Annotated/Field metadata."""
    found: dict[str, Any] = {}
    discriminator: Any = None
    description: str | None = None
    for item in metadata:
        if item is None:
            continue
        if isinstance(item, FieldInfo):
            inner, disc, desc = _constraints_of(item.metadata)
            found.update(
                {n: getattr(inner, n) for n in _CONSTRAINT_NAMES if getattr(inner, n) is not None}
            )
            discriminator = item.discriminator or disc or discriminator
            description = item.description or desc or description
            continue
        if type(item).__name__ == "Discriminator":
            discriminator = getattr(item, "discriminator", None)
            continue
        for n in _CONSTRAINT_NAMES:
            value = getattr(item, n, None)
            if value is not None and not callable(value):
                found[n] = value
    pattern = found.get("pattern")
    if isinstance(pattern, re.Pattern):
        found["pattern"] = pattern.pattern
    return Constraints(**found), discriminator, description


def _def_name(cls: type[BaseModel], taken: set[str]) -> str:
    base = re.sub(r"[^a-zA-Z0-9_-]", "_", cls.__name__).strip("_") or "Model"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name


class _Reader:
    def __init__(self, root: type[BaseModel]):
        self.root = root
        self.models: dict[type[BaseModel], ModelSpec] = {}
        self.edges: dict[type[BaseModel], set[type[BaseModel]]] = {}

    def read_model(self, cls: type[BaseModel], path: str) -> None:
        if cls in self.models:
            return
        if issubclass(cls, RootModel):
            raise SchemaError(
                f"{path}: {cls.__name__} is a RootModel; strict mode needs an object with named "
                "fields at the root",
                field_path=path,
                model=self.root.__name__,
            )
        if cls.model_config.get("extra") == "allow":
            raise SchemaError(
                f"{path}: {cls.__name__} allows extra fields (extra='allow'), which strict mode "
                "cannot express; use extra='forbid' or 'ignore'",
                field_path=path,
                model=self.root.__name__,
            )
        if not cls.__pydantic_complete__:
            try:
                cls.model_rebuild()
            except Exception as e:
                raise SchemaError(
                    f"{path}: {cls.__name__} has unresolved annotations: {e}",
                    field_path=path,
                    model=self.root.__name__,
                ) from e
        doc = cls.__doc__
        if doc == BaseModel.__doc__ or cls.__doc__ is None:
            doc = None
        taken = {m.def_name for m in self.models.values()}
        spec = ModelSpec(cls, _def_name(cls, taken), _clean_doc(doc))
        self.models[cls] = spec
        self.edges[cls] = set()
        for name, info in cls.model_fields.items():
            fpath = f"{path}.{name}"
            key = self._key(name, info, fpath)
            metadata = list(info.metadata)
            constraints, _, _ = _constraints_of(metadata)
            node = self.read_type(info.annotation, fpath, cls, constraints, info.discriminator)
            spec.fields.append(FieldSpec(name, key, node, info.description))

    def _key(self, name: str, info: FieldInfo, path: str) -> str:
        alias = info.validation_alias
        if alias is None:
            return info.alias or name
        if isinstance(alias, str):
            return alias
        choices = getattr(alias, "choices", None)
        if choices and isinstance(choices[0], str):
            return choices[0]
        raise SchemaError(
            f"{path}: a validation_alias path cannot be expressed in strict mode; use a plain "
            "string alias",
            field_path=path,
            model=self.root.__name__,
        )

    def fail(self, path: str, reason: str) -> SchemaError:
        return SchemaError(f"{path}: {reason}", field_path=path, model=self.root.__name__)

    def read_type(
        self,
        tp: Any,
        path: str,
        owner: type[BaseModel],
        constraints: Constraints = NO_CONSTRAINTS,
        discriminator: Any = None,
    ) -> Node:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            base, *meta = get_args(tp)
            extra, disc, _ = _constraints_of(meta)
            return self.read_type(
                base, path, owner, extra.merged(constraints), discriminator or disc
            )
        if tp is Any or tp is object:
            raise self.fail(
                path,
                "typing.Any cannot be expressed in strict mode; give the field a concrete type",
            )
        if isinstance(tp, typing.TypeVar):
            raise self.fail(path, f"unbound type variable {tp} cannot be expressed in strict mode")
        if origin in (Union, types.UnionType):
            return self._union(tp, path, owner, constraints, discriminator)
        if origin is Literal:
            values = tuple(v.value if isinstance(v, enum.Enum) else v for v in get_args(tp))
            for v in values:
                if not isinstance(v, str | int | float | bool | type(None)):
                    raise self.fail(path, f"Literal value {v!r} is not a JSON scalar")
            return LiteralNode(values)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            values = tuple(m.value for m in tp)
            for v in values:
                if not isinstance(v, str | int | float | bool):
                    raise self.fail(
                        path, f"enum {tp.__name__} has value {v!r}, which is not a JSON scalar"
                    )
            return EnumNode(tp, values)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            if issubclass(tp, RootModel):
                root_type = tp.model_fields["root"].annotation
                return self.read_type(root_type, path, owner, constraints, discriminator)
            self.read_model(tp, path)
            self.edges[owner].add(tp)
            return ModelNode(tp)
        kind = _SCALARS.get(tp)
        if kind is None and isinstance(tp, type) and issubclass(tp, AnyUrl):
            kind = "url"
        if kind is not None:
            if (
                kind == "decimal"
                and constraints.max_digits is not None
                and (
                    constraints.decimal_places is not None
                    and constraints.decimal_places > constraints.max_digits
                )
            ):
                raise self.fail(path, "decimal_places is larger than max_digits")
            return Scalar(kind, constraints)
        args = get_args(tp)
        if origin in (list, set, frozenset, AbcSequence, AbcSet) or tp in (list, set, frozenset):
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode; give the list an item type",
                )
            item = self.read_type(args[0], f"{path}[]", owner)
            return SeqNode(item, constraints, unique=origin in (set, frozenset, AbcSet))
        if origin is tuple or tp is tuple:
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode; give the tuple item types",
                )
            if len(args) == 2 and args[1] is Ellipsis:
                return SeqNode(self.read_type(args[0], f"{path}[]", owner), constraints)
            if args == ((),):
                raise self.fail(path, "an empty tuple cannot be expressed in strict mode")
            items = tuple(self.read_type(a, f"{path}[{i}]", owner) for i, a in enumerate(args))
            return TupleNode(items)
        if origin in (dict, AbcMapping) or tp is dict:
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode; give the dict key and value "
                    "types",
                )
            key = self.read_type(args[0], f"{path}{{key}}", owner)
            if not (
                isinstance(key, EnumNode | LiteralNode)
                or (isinstance(key, Scalar) and key.kind in ("str", "int", "uuid", "date"))
            ):
                raise self.fail(path, "dict keys must be str, int, an Enum or a Literal")
            value = self.read_type(args[1], f"{path}{{}}", owner)
            return MapNode(key, value, constraints)
        raise self.fail(path, f"type {_type_name(tp)} cannot be expressed in strict mode")

    def _union(
        self,
        tp: Any,
        path: str,
        owner: type[BaseModel],
        constraints: Constraints,
        discriminator: Any,
    ) -> Node:
        args = get_args(tp)
        nullable = type(None) in args
        members = tuple(
            self.read_type(a, path, owner, constraints) for a in args if a is not type(None)
        )
        node: Node
        if len(members) == 1:
            node = members[0]
        else:
            flat: list[Node] = []
            for m in members:
                flat.extend(m.members if isinstance(m, UnionNode) else (m,))
            disc = discriminator if isinstance(discriminator, str) else None
            node = UnionNode(tuple(flat), disc)
        return NullableNode(node) if nullable else node


def _type_name(tp: Any) -> str:
    if isinstance(tp, type):
        return f"{tp.__module__}.{tp.__qualname__}" if tp.__module__ != "builtins" else tp.__name__
    return repr(tp)


def _clean_doc(doc: str | None) -> str | None:
    if not doc:
        return None
    import inspect

    return inspect.cleandoc(doc) or None


def decimal_digits(c: Constraints) -> tuple[int, int]:
    """(precision, scale) that a Decimal's constraints allow; `DEFAULT_DECIMAL` fills the gaps.

    The wire pattern and the DECIMAL column both use it, so whatever the pattern lets through the
    column holds without rounding. Only max_digits p: scale min(p, 9). Only decimal_places s:
    precision 38.
    """
    if c.max_digits is None and c.decimal_places is None:
        return DEFAULT_DECIMAL
    digits = c.max_digits if c.max_digits is not None else DEFAULT_DECIMAL[0]
    places = c.decimal_places if c.decimal_places is not None else min(digits, DEFAULT_DECIMAL[1])
    return digits, places


def analyze(model: type[BaseModel]) -> Analysis:
    """Read `model` and every model it reaches; raise `SchemaError` on what strict mode lacks."""
    reader = _Reader(model)
    reader.read_model(model, model.__name__)
    recursive: set[type[BaseModel]] = set()
    for start in reader.models:
        seen: set[type[BaseModel]] = set()
        stack = list(reader.edges[start])
        while stack:
            cur = stack.pop()
            if cur is start:
                recursive.add(start)
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(reader.edges[cur])
    return Analysis(model, reader.models, recursive)
