"""Read a Pydantic model into a small tree of types that strict mode and the table side both use.

`analyze(model)` walks every field once and either returns an `Analysis` (one `ModelSpec` per
model class reached, each field reduced to a `Node`) or raises `SchemaError` naming the field path
(`Ticket.customer.tags`) and why strict structured output cannot express it. `compiler` turns the
tree into a strict JSON schema plus a decoder; `columns` turns it into DuckDB and Arrow types.
Keeping one reader means the wire form and the table can never disagree about a type.

Records are Pydantic models, standard-library and Pydantic dataclasses, `TypedDict`s and
`NamedTuple`s: each is one `ModelSpec` (its `kind` says how a value's fields are read). A field
whose type is a `RootModel` is read as the root's type. `NewType`, `TypeAliasType`, `deque`,
`Json[X]`, `PastDate`/`FutureDate`, `IPvAnyAddress` and `timedelta` reduce to nodes with a
faithful strict-mode form.

Every rewrite or weakening that strict mode forces is recorded as a `Note` on the `Analysis`
(path, what happens, the fix a user can make): `extract schema --check` lists them.
`analyze(model, collect=True)` records refusals as notes too, one per field, instead of raising.
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import ipaddress
import re
import sys
import types
import typing
import uuid
from collections.abc import Mapping as AbcMapping
from collections.abc import Sequence as AbcSequence
from collections.abc import Set as AbcSet
from typing import Any, Literal, Union, get_args, get_origin

import typing_extensions
from pydantic import (
    AliasChoices,
    AliasPath,
    AwareDatetime,
    BaseModel,
    EmailStr,
    FutureDate,
    FutureDatetime,
    HttpUrl,
    IPvAnyAddress,
    Json,
    NaiveDatetime,
    PastDate,
    PastDatetime,
    RootModel,
    SecretBytes,
    SecretStr,
)
from pydantic.fields import FieldInfo
from pydantic.networks import AnyUrl

from ..errors import SchemaError
from .patterns import length_pattern
from .records import def_name, record_doc, record_fields, record_kind, wire_key
from .tree import (
    CONSTRAINT_NAMES,
    NO_CONSTRAINTS,
    Analysis,
    Constraints,
    EnumNode,
    FieldSpec,
    JsonNode,
    LiteralNode,
    MapNode,
    ModelNode,
    ModelSpec,
    Node,
    Note,
    NullableNode,
    Scalar,
    SeqNode,
    TupleNode,
    UnionNode,
)

__all__ = ["analyze"]

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
    IPvAnyAddress: "ip",
    dt.timedelta: "duration",
}

#: Pydantic types whose check strict mode cannot state: (kind, note for the description)
_NOTED: dict[Any, tuple[str, str]] = {
    PastDate: ("date", "A date in the past."),
    FutureDate: ("date", "A date in the future."),
    PastDatetime: ("datetime", "A moment in the past."),
    FutureDatetime: ("datetime", "A moment in the future."),
}

_REFUSED: dict[Any, tuple[str, str]] = {
    bytes: (
        "bytes cannot be answered in strict mode (a model writes text, not raw bytes)",
        "declare str, or Base64Str if the value is base64 text",
    ),
    SecretStr: (
        "SecretStr would be written to the output table in clear text, defeating its masking",
        "declare str, or drop the field from the output model",
    ),
    SecretBytes: (
        "SecretBytes would be written to the output table in clear, defeating its masking",
        "declare str, or drop the field from the output model",
    ),
}

_STRING_CONSTRAINT_KINDS = {"str", "email", "url", "http_url"}


def _is_json_marker(item: Any) -> bool:
    # Json[X] is Annotated[X, Json]: the bare class is the marker
    return item is Json or type(item) is Json


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
                {n: getattr(inner, n) for n in CONSTRAINT_NAMES if getattr(inner, n) is not None}
            )
            discriminator = item.discriminator or disc or discriminator
            description = item.description or desc or description
            continue
        if _is_json_marker(item):
            continue
        if type(item).__name__ == "Discriminator":
            discriminator = getattr(item, "discriminator", None)
            continue
        for n in CONSTRAINT_NAMES:
            value = getattr(item, n, None)
            if value is not None and not callable(value):
                found[n] = value
    pattern = found.get("pattern")
    if isinstance(pattern, re.Pattern):
        found["pattern"] = pattern.pattern
    return Constraints(**found), discriminator, description


def _alias_type(tp: Any) -> Any:
    """The TypeAliasType behind `tp` (`type X = ...`, or an applied generic alias), or None."""
    alias_types = tuple(
        t
        for t in (getattr(typing, "TypeAliasType", None), typing_extensions.TypeAliasType)
        if t is not None
    )
    if isinstance(tp, alias_types):
        return tp
    origin = get_origin(tp)
    if isinstance(origin, alias_types):
        return origin
    return None


class _Reader:
    def __init__(self, root: type[BaseModel], collect: bool = False):
        self.root = root
        self.collect = collect
        self.models: dict[type[Any], ModelSpec] = {}
        self.edges: dict[type[Any], set[type[Any]]] = {}
        self.notes: list[Note] = []
        self.by_name = False
        self._aliases: list[Any] = []

    def note(self, path: str, action: str, detail: str, fix: str = "") -> None:
        self.notes.append(Note(path, action, detail, fix))

    def read_model(self, cls: type[Any], path: str, kind: str = "model") -> None:
        if cls in self.models:
            return
        if kind == "model" and issubclass(cls, RootModel):
            raise SchemaError(
                f"{path}: {cls.__name__} is a RootModel; strict mode needs an object with named "
                "fields at the root",
                field_path=path,
                model=self.root.__name__,
            )
        config = getattr(cls, "model_config", None) or getattr(cls, "__pydantic_config__", {})
        if config.get("extra") == "allow":
            raise self.fail(
                path,
                f"{cls.__name__} allows extra fields (extra='allow'), which strict mode cannot "
                "express",
                "use extra='forbid' or 'ignore'",
            )
        if kind == "model" and not cls.__pydantic_complete__:
            try:
                cls.model_rebuild()
            except Exception as e:
                raise self.fail(path, f"{cls.__name__} has unresolved annotations: {e}") from e
        taken = {m.def_name for m in self.models.values()}
        spec = ModelSpec(cls, def_name(cls, taken), record_doc(cls, kind), kind=kind)
        self.models[cls] = spec
        self.edges[cls] = set()
        for name, info, may_be_missing in record_fields(cls, kind, path, self.fail):
            fpath = f"{path}.{name}"
            null_is_missing = False
            try:
                key = self._key(name, info, fpath)
                constraints, _, _ = _constraints_of(list(info.metadata))
                node = self.read_type(info.annotation, fpath, cls, constraints, info.discriminator)
                if any(_is_json_marker(m) for m in info.metadata):
                    node = self._json(node, fpath)
                if may_be_missing:
                    node, null_is_missing = self._missing(node, fpath)
            except SchemaError as e:
                if not self.collect:
                    raise
                self.note(e.field_path or fpath, "refused", _reason(e), e.fix)
                node = Scalar("str")
                key = name
            spec.fields.append(FieldSpec(name, key, node, info.description, null_is_missing))

    def _missing(self, node: Node, path: str) -> tuple[Node, bool]:
        """A TypedDict key that may be missing: strict mode answers every key, so it is answered
        as null when absent. Returns the wire node and whether a null means "missing"."""
        if isinstance(node, NullableNode):
            self.note(
                path,
                "weakened",
                "a TypedDict key that may be missing and may be None: an absent key and a None "
                "both arrive as None",
                "make the key required (`X | None`) if the difference does not matter",
            )
            return node, False
        self.note(
            path,
            "rewritten",
            "a TypedDict key that may be missing (NotRequired, total=False): answered as null "
            "when absent, and the key left out before validation",
        )
        return NullableNode(node), True

    def _json(self, inner: Node, path: str) -> Node:
        self.note(
            path,
            "rewritten",
            "Json[...]: sent as the value itself and serialised to the JSON string Pydantic reads",
        )
        return JsonNode(inner)

    def _key(self, name: str, info: FieldInfo, path: str) -> str:
        key = wire_key(name, info)
        if key is None:
            alias = info.validation_alias
            raise self.fail(path, f"validation_alias {alias!r} cannot be expressed in strict mode")
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
            if len(alias.choices) > 1:
                self.note(
                    path,
                    "rewritten",
                    f"AliasChoices: the answer and the column use the first choice {key!r}",
                )
            return key
        if isinstance(alias, AliasChoices):
            alias = alias.choices[0]
        if isinstance(alias, AliasPath):
            self.by_name = True
            self.note(
                path,
                "rewritten",
                f"AliasPath{tuple(alias.path)!r}: answered and stored under the field's name "
                f"{name!r}, validated by name",
            )
        return key

    def fail(self, path: str, reason: str, fix: str = "") -> SchemaError:
        text = f"{path}: {reason}" + (f"; {fix}" if fix else "")
        return SchemaError(text, field_path=path, model=self.root.__name__, reason=reason, fix=fix)

    def read_type(
        self,
        tp: Any,
        path: str,
        owner: type[Any],
        constraints: Constraints = NO_CONSTRAINTS,
        discriminator: Any = None,
    ) -> Node:
        origin = get_origin(tp)
        if origin is typing.Annotated:
            base, *meta = get_args(tp)
            extra, disc, _ = _constraints_of(meta)
            node = self.read_type(
                base, path, owner, extra.merged(constraints), discriminator or disc
            )
            return self._json(node, path) if any(_is_json_marker(m) for m in meta) else node
        if isinstance(tp, typing.NewType):
            return self.read_type(tp.__supertype__, path, owner, constraints, discriminator)
        alias = _alias_type(tp)
        if alias is not None:
            if alias in self._aliases:
                raise self.fail(
                    path,
                    f"the type alias {alias.__name__} refers to itself, which strict mode "
                    "cannot express without a model",
                    "use a recursive BaseModel instead of a recursive type alias",
                )
            value = alias.__value__
            if isinstance(value, str):  # a forward reference, as a recursive alias is written
                namespace = (
                    vars(sys.modules[alias.__module__]) if alias.__module__ in sys.modules else {}
                )
                value = eval(value, dict(namespace), {alias.__name__: alias})
            if alias is not tp:  # an applied generic alias: substitute its arguments
                params = getattr(alias, "__type_params__", ())
                value = value[get_args(tp)] if params else value
            self._aliases.append(alias)
            try:
                return self.read_type(value, path, owner, constraints, discriminator)
            finally:
                self._aliases.pop()
        if tp is Any or tp is object:
            raise self.fail(
                path,
                "typing.Any cannot be expressed in strict mode",
                "give the field a concrete type",
            )
        if tp is Json:
            raise self.fail(
                path,
                "a bare Json holds any JSON value (typing.Any), which strict mode cannot express",
                "name the content: Json[list[int]], Json[MyModel], ...",
            )
        if isinstance(tp, typing.TypeVar):
            raise self.fail(
                path,
                f"unbound type variable {tp} cannot be expressed in strict mode",
                "parametrise the generic model, e.g. Page[Item]",
            )
        if tp in _REFUSED:
            reason, fix = _REFUSED[tp]
            raise self.fail(path, reason, fix)
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
        if isinstance(tp, type) and issubclass(tp, RootModel):
            root_type = tp.model_fields["root"].annotation
            self.note(path, "rewritten", f"RootModel {tp.__name__}: sent and stored as its root")
            return self.read_type(root_type, path, owner, constraints, discriminator)
        kind = record_kind(tp)
        if kind is not None:
            self.read_model(tp, path, kind)
            self.edges[owner].add(tp)
            return ModelNode(tp)
        if tp in _NOTED:
            kind, note = _NOTED[tp]
            self.note(path, "weakened", f"{tp.__name__}: {note.lower()[:-1]} is only described")
            return self._scalar(kind, constraints, path, note)
        scalar = _SCALARS.get(tp)
        if scalar is None and isinstance(tp, type) and issubclass(tp, AnyUrl):
            scalar = "http_url" if issubclass(tp, HttpUrl) else "url"
        if scalar is not None:
            return self._scalar(scalar, constraints, path)
        args = get_args(tp)
        seqs = (list, set, frozenset, collections.deque, AbcSequence, AbcSet)
        if origin in seqs or tp in seqs:
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode",
                    "give the list an item type",
                )
            item = self.read_type(args[0], f"{path}[]", owner)
            unique = origin in (set, frozenset, AbcSet)
            if unique:
                self.note(
                    path,
                    "weakened",
                    "set: strict mode has no uniqueItems; 'each item at most once' is in the "
                    "description and Pydantic drops duplicates",
                )
            return SeqNode(item, constraints, unique=unique)
        if origin is tuple or tp is tuple:
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode",
                    "give the tuple item types",
                )
            if len(args) == 2 and args[1] is Ellipsis:
                return SeqNode(self.read_type(args[0], f"{path}[]", owner), constraints)
            if args == ((),):
                raise self.fail(path, "an empty tuple cannot be expressed in strict mode")
            items = tuple(self.read_type(a, f"{path}[{i}]", owner) for i, a in enumerate(args))
            node = TupleNode(items)
            if node.as_object:
                self.note(
                    path,
                    "rewritten",
                    'tuple of differing types: sent as an object keyed by position ("0", "1", '
                    "...) and decoded back to a tuple",
                )
            return node
        if origin in (dict, AbcMapping) or tp is dict:
            if not args:
                raise self.fail(
                    path,
                    "typing.Any cannot be expressed in strict mode",
                    "give the dict key and value types",
                )
            key = self.read_type(args[0], f"{path}{{key}}", owner)
            if not (
                isinstance(key, EnumNode | LiteralNode)
                or (isinstance(key, Scalar) and key.kind in ("str", "int", "uuid", "date"))
            ):
                raise self.fail(path, "dict keys must be str, int, an Enum or a Literal")
            value = self.read_type(args[1], f"{path}{{}}", owner)
            self.note(
                path,
                "rewritten",
                'dict: sent as a list of {"key", "value"} pairs (strict mode has no free keys)',
            )
            return MapNode(key, value, constraints)
        raise self.fail(
            path,
            f"type {_type_name(tp)} cannot be expressed in strict mode",
            "use a BaseModel, dataclass, TypedDict or a standard scalar type",
        )

    def _scalar(self, kind: str, c: Constraints, path: str, note: str | None = None) -> Scalar:
        if (
            kind == "decimal"
            and c.max_digits is not None
            and (c.decimal_places is not None and c.decimal_places > c.max_digits)
        ):
            raise self.fail(path, "decimal_places is larger than max_digits")
        if kind in _STRING_CONSTRAINT_KINDS and (c.min_length or c.max_length is not None):
            pattern = (
                length_pattern(c.min_length, c.max_length, c.pattern) if kind == "str" else None
            )
            if pattern is False:
                raise self.fail(
                    path,
                    f"no string matches both the pattern {c.pattern!r} and the length limits",
                    "fix the pattern or the limits",
                )
            if pattern:
                self.note(path, "rewritten", f"string length: sent as the pattern {pattern}")
            else:
                why = (
                    "its format has a fixed pattern"
                    if kind != "str"
                    else f"the pattern {c.pattern!r} takes no length without lookahead"
                )
                self.note(
                    path,
                    "weakened",
                    f"string length: only in the description ({why}); Pydantic enforces it",
                    "write the length into the pattern, e.g. ^[A-Z]{3,8}$" if kind == "str" else "",
                )
        bounded = any(getattr(c, a) is not None for a in ("gt", "ge", "lt", "le", "multiple_of"))
        if bounded and kind in ("decimal", "date", "datetime", "datetime_aware", "datetime_naive"):
            self.note(path, "weakened", f"bounds on a {kind}: only in the description")
        return Scalar(kind, c, note)

    def _union(
        self,
        tp: Any,
        path: str,
        owner: type[Any],
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


def _reason(e: SchemaError) -> str:
    if e.reason:
        return e.reason
    text = str(e)
    return text.split(": ", 1)[1] if e.field_path and text.startswith(e.field_path) else text


def analyze(model: type[BaseModel], *, collect: bool = False) -> Analysis:
    """Read `model` and every record it reaches; raise `SchemaError` on what strict mode lacks.

    With `collect`, a field that cannot be expressed is recorded as a `refused` note (and read
    as a string) instead, so a linter can list every problem at once.
    """
    reader = _Reader(model, collect=collect)
    reader.read_model(model, model.__name__)
    recursive: set[type[Any]] = set()
    for start in reader.models:
        seen: set[type[Any]] = set()
        stack = list(reader.edges[start])
        while stack:
            cur = stack.pop()
            if cur is start:
                recursive.add(start)
                break
            if cur not in seen:
                seen.add(cur)
                stack.extend(reader.edges[cur])
    return Analysis(model, reader.models, recursive, reader.notes, reader.by_name)
