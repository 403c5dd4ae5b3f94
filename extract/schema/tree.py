"""The small tree of types that strict mode and the table side both read.

`types.analyze(model)` builds it: an `Analysis` holds one `ModelSpec` per record class reached,
each field a `FieldSpec` whose type is reduced to a `Node` (`Scalar`, `LiteralNode`, `EnumNode`,
`SeqNode`, `TupleNode`, `MapNode`, `ModelNode`, `UnionNode`, `NullableNode`, `JsonNode`), and the
`Note`s on what strict mode rewrites, weakens or refuses. `compiler`, `wire`, `columns` and the
trust package only read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Union

from pydantic import BaseModel

__all__ = [
    "CONSTRAINT_NAMES",
    "DEFAULT_DECIMAL",
    "NO_CONSTRAINTS",
    "Analysis",
    "Constraints",
    "EnumNode",
    "FieldSpec",
    "JsonNode",
    "LiteralNode",
    "MapNode",
    "ModelNode",
    "ModelSpec",
    "Node",
    "Note",
    "NullableNode",
    "Scalar",
    "SeqNode",
    "TupleNode",
    "UnionNode",
    "decimal_digits",
]

#: precision and scale of a Decimal that declares neither max_digits nor decimal_places
DEFAULT_DECIMAL = (38, 9)

CONSTRAINT_NAMES = (
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
            for n in CONSTRAINT_NAMES
        }
        return Constraints(**values)


NO_CONSTRAINTS = Constraints()


@dataclass(frozen=True)
class Scalar:
    """A JSON scalar. `kind` is one of: str int float bool null date datetime datetime_aware
    datetime_naive time duration uuid email url http_url ipv4 ipv6 ip decimal (`ip`: IPv4 or
    IPv6; `http_url`: an http or https URL).

    `note` is a check Pydantic makes that strict mode cannot state (`PastDate`: "A date in the
    past."); it goes into the description."""

    kind: str
    constraints: Constraints = NO_CONSTRAINTS
    note: str | None = None


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
    """A fixed-length tuple `tuple[X, Y, ...]`. When the positions differ in type it travels as
    an object keyed by position (`{"0": X, "1": Y}`): strict mode has no `prefixItems`, and an
    array of `anyOf` items would let any type stand at any position."""

    items: tuple[Node, ...]

    @property
    def as_object(self) -> bool:
        return any(i != self.items[0] for i in self.items[1:])


@dataclass(frozen=True)
class JsonNode:
    """`Json[X]`: Pydantic wants a JSON string; the wire carries X itself, which the decoder
    serialises, so the model never has to escape JSON inside JSON."""

    inner: Node


@dataclass(frozen=True)
class MapNode:
    """`dict[K, V]`; keys are str, int, Enum or string Literal."""

    key: Node
    value: Node
    constraints: Constraints = NO_CONSTRAINTS


@dataclass(frozen=True)
class ModelNode:
    """A nested record (model, dataclass, TypedDict, NamedTuple); its fields are in
    `Analysis.models[cls]`."""

    cls: type[Any]


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
    Scalar,
    LiteralNode,
    EnumNode,
    SeqNode,
    TupleNode,
    MapNode,
    ModelNode,
    UnionNode,
    NullableNode,
    JsonNode,
]


@dataclass(frozen=True)
class FieldSpec:
    """One model field: attribute `name`, wire and column `key` (its alias, else its name)."""

    name: str
    key: str
    node: Node
    description: str | None
    #: a TypedDict key that may be missing and does not admit None: answered as null when
    #: absent, and the null dropped before validation
    null_is_missing: bool = False


@dataclass
class ModelSpec:
    """One record class: its `$defs` name, docstring and fields in declaration order. `kind` is
    `model`, `dataclass`, `namedtuple` (fields read as attributes) or `typeddict` (a dict)."""

    cls: type[Any]
    def_name: str
    description: str | None
    fields: list[FieldSpec] = field(default_factory=list)
    kind: str = "model"

    def get(self, value: Any, name: str) -> Any:
        """The value of field `name` in an instance of this record (None for a TypedDict key
        that may be missing and is)."""
        return value.get(name) if self.kind == "typeddict" else getattr(value, name)


@dataclass(frozen=True)
class Note:
    """What strict mode does to one field: `action` is `rewritten` (sent in another form and
    decoded back), `weakened` (a check moved into the description, enforced by Pydantic only) or
    `refused`; `fix` is what a user can change (empty when nothing needs changing)."""

    path: str
    action: str
    detail: str
    fix: str = ""


@dataclass
class Analysis:
    """Every record reached from `root`, which of them take part in a reference cycle, and the
    notes on what strict mode rewrites, weakens or refuses."""

    root: type[BaseModel]
    models: dict[type[Any], ModelSpec]
    recursive: set[type[Any]]
    notes: list[Note] = field(default_factory=list)
    #: some field's wire key is its name rather than what Pydantic reads (an AliasPath):
    #: answers are validated with `by_name=True`
    by_name: bool = False


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
