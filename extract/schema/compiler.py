"""Pydantic models compiled to strict `response_format` schemas, and replies decoded back.

`compile_schema(Model)` gives a `CompiledSchema` whose `response_format` strict mode accepts:
every object closed (`additionalProperties: false`) with every property required, at every depth
and inside `$defs`; `X | None` as `anyOf [X, null]`; Enum/Literal as `enum`/`const`; date,
date-time, time, uuid, email, ipv4 and ipv6 formats; nested and recursive models through `$defs`;
unions (discriminated ones included) as `anyOf`; no `title` and no `default`. Field descriptions
and model docstrings are kept, since they instruct the model.

What strict mode cannot say directly is rewritten on the wire and decoded back by
`CompiledSchema.parse` before Pydantic validates:

- `dict[K, V]` travels as a list of `{"key": K, "value": V}` objects (a duplicate key: last wins);
- tuples travel as arrays (a fixed tuple as `minItems = maxItems = n`); when its positions have
  different types, as an object keyed by position (`{"0": X, "1": Y}`), since strict mode has no
  `prefixItems` and an array of `anyOf` items lets any type stand anywhere;
- `Json[X]` travels as X itself and is serialised to the JSON string Pydantic reads;
- string lengths travel as a `pattern` (any four characters, or folded into a simple pattern of the
  user's, see `extract.schema.patterns`), and are described too;
- `Decimal` travels as a string with a pattern, so no digit is lost to a float. Unconstrained, the
  pattern allows 29 integer and 9 decimal digits, matching the DECIMAL(38, 9) column;
- constraints strict mode lacks (set uniqueness, bounds on decimals and dates, past/future
  dates, lengths that cannot be folded into the user's pattern) are stated in the description
  and enforced by Pydantic.

Replies are validated in JSON mode (`model_validate_json`), as Pydantic reads JSON: a model with
`ConfigDict(strict=True)` then accepts ISO dates and decimal strings, as it does for JSON input.

The decoding and encoding between the wire form and the model live in `extract.schema.wire`.

What cannot be expressed at all raises `SchemaError` naming the field path and the reason (`Any`,
`extra="allow"`, a RootModel at the root, an unsupported type). `schema_problems` (in
`extract.schema.strict_limits`, exported here too) checks the documented size limits.

A `$ref` never carries sibling keywords (some strict implementations reject them), so a described
field whose type is a model becomes `{"anyOf": [{"$ref": ...}], "description": ...}`.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, RootModel

from ..errors import SchemaError
from .patterns import length_pattern
from .strict_limits import MAX_CHARS as MAX_CHARS
from .strict_limits import MAX_DEPTH as MAX_DEPTH
from .strict_limits import MAX_ENUM_VALUES as MAX_ENUM_VALUES
from .strict_limits import MAX_PROPERTIES as MAX_PROPERTIES
from .strict_limits import NAME_RE, schema_problems
from .tree import (
    Analysis,
    Constraints,
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
    decimal_digits,
)
from .types import analyze
from .wire import Decoder, Decoders, Encoder

__all__ = ["CompiledSchema", "compile_schema", "schema_problems"]

_FORMATS = {
    "date": "date",
    "datetime": "date-time",
    "datetime_aware": "date-time",
    "time": "time",
    "uuid": "uuid",
    "email": "email",
    "ipv4": "ipv4",
    "ipv6": "ipv6",
    "duration": "duration",
}
# [0-9] rather than \d: JSON Schema patterns are ECMA regexes, where engines differ on Unicode \d
_NAIVE_DATETIME = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?$"
)
# no \S: llama.cpp's grammar does not enforce class escapes
_URL = r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^ \t\n\r]+$"
# a host of letters, digits, dots and dashes, then an optional port and path: what HttpUrl takes
_HTTP_URL = r"^https?://[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?(:[0-9]{1,4})?(/[!-~]*)?$"


# --------------------------------------------------------------------------------------------
# compiling


@dataclass(frozen=True)
class CompiledSchema:
    """A model compiled for strict structured output, with the codec between wire and model."""

    model: type[BaseModel]
    name: str
    schema: dict[str, Any]
    response_format: dict[str, Any]
    hash: str
    _decode: Decoder | None = field(default=None, repr=False, compare=False)
    _encoder: Encoder | None = field(default=None, repr=False, compare=False)
    #: validate with `by_name=True`: some field is answered under its name (an AliasPath)
    _by_name: bool = field(default=False, repr=False, compare=False)

    @property
    def needs_decoding(self) -> bool:
        """True when the wire form differs from what Pydantic reads (dicts, tuples, Json)."""
        return self._decode is not None

    def parse(self, data: Any) -> BaseModel:
        """Decode a reply (parsed JSON, or JSON text) and validate it with the model.

        Validation is in JSON mode, as the reply is JSON. Raises `pydantic.ValidationError`.
        Without rewritten types this is `model_validate_json` itself.
        """
        by_name = True if self._by_name else None
        if self._decode is None:
            text = data if isinstance(data, str | bytes) else json.dumps(data)
            return self.model.model_validate_json(text, by_name=by_name)
        if isinstance(data, str | bytes):
            data = json.loads(data)
        return self.model.model_validate_json(json.dumps(self._decode(data)), by_name=by_name)

    def encode(self, instance: BaseModel) -> Any:
        """The wire form of `instance`: JSON-able data that matches `schema` and `parse` inverts."""
        if self._encoder is None:  # pragma: no cover - compile_schema always sets it
            raise TypeError("a CompiledSchema built by hand has no encoder")
        return self._encoder.record(self.model, instance)


def compile_schema(
    model: type[BaseModel], *, name: str | None = None, string_lengths: bool = False
) -> CompiledSchema:
    """Compile `model` to a strict JSON schema; raise `SchemaError` naming what cannot be sent.

    `string_lengths` also emits `minLength`/`maxLength` on strings. Strict mode (OpenAI,
    OpenRouter) refuses them, so by default lengths are stated in the description and enforced
    by Pydantic; a grammar-constrained local server (llama.cpp) enforces them while decoding,
    which keeps a small model from running on until `max_tokens`.
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise SchemaError(f"{model!r} is not a pydantic BaseModel subclass")
    if issubclass(model, RootModel):
        raise SchemaError(
            f"{model.__name__}: the root must be an object with named fields; a RootModel is not",
            field_path=model.__name__,
            model=model.__name__,
        )
    if name is None:
        name = re.sub(r"[^a-zA-Z0-9_-]", "_", model.__name__)[:64]
    elif not NAME_RE.match(name):
        raise SchemaError(
            f"{model.__name__}: schema name {name!r} must match [a-zA-Z0-9_-]{{1,64}}",
            model=model.__name__,
        )
    analysis = analyze(model)
    schema = _Emitter(analysis, string_lengths=string_lengths).root()
    problems = schema_problems(schema, name)
    if problems:
        err = SchemaError(
            f"{model.__name__}: the schema exceeds strict-mode limits: " + "; ".join(problems),
            model=model.__name__,
        )
        err.problems = problems
        raise err
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": schema},
    }
    canonical = json.dumps(response_format, sort_keys=True, separators=(",", ":"))
    return CompiledSchema(
        model=model,
        name=name,
        schema=schema,
        response_format=response_format,
        hash=hashlib.sha256(canonical.encode()).hexdigest(),
        _decode=Decoders(analysis).root(),
        _encoder=Encoder(analysis),
        _by_name=analysis.by_name,
    )


def _num(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _bounds_text(c: Constraints) -> list[str]:
    parts = []
    for attr, words in (
        ("ge", "at least"),
        ("gt", "more than"),
        ("le", "at most"),
        ("lt", "less than"),
        ("multiple_of", "a multiple of"),
    ):
        value = getattr(c, attr)
        if value is not None:
            parts.append(f"{words} {value}")
    return parts


def _join(*texts: str | None) -> str | None:
    kept = [t for t in texts if t]
    return " ".join(kept) if kept else None


def _describe(schema: dict[str, Any], text: str | None) -> dict[str, Any]:
    """Attach `text` as the description, keeping a `$ref` free of sibling keywords."""
    if not text:
        return schema
    if "$ref" in schema:
        return {"anyOf": [schema], "description": text}
    if schema.get("description"):
        sep = " " if text.rstrip()[-1:] in ".!?:" else ". "
        return {**schema, "description": f"{text.rstrip()}{sep}{schema['description']}"}
    return {**schema, "description": text}


def _decimal_pattern(c: Constraints) -> tuple[str, str]:
    digits, places = decimal_digits(c)
    whole = digits - places
    note = f"at most {whole} digits before the point and {places} after"
    if whole == 0:  # Pydantic counts the "0" of "0" as a whole digit, but not the one of "0.5"
        return rf"^-?0\.[0-9]{{1,{places}}}$", note
    frac = rf"(\.[0-9]{{1,{places}}})?" if places > 0 else ""
    return rf"^-?[0-9]{{1,{whole}}}{frac}$", note


class _Emitter:
    def __init__(self, analysis: Analysis, *, string_lengths: bool = False):
        self.a = analysis
        self.string_lengths = string_lengths
        self.refs: set[type[BaseModel]] = set()

    def root(self) -> dict[str, Any]:
        schema = self.model_body(self.a.root)
        defs: dict[str, Any] = {}
        # $defs holds every model referenced from anywhere, the root too when it is recursive
        done: set[type[BaseModel]] = set()
        while self.refs - done:
            for cls in sorted(self.refs - done, key=lambda c: self.a.models[c].def_name):
                done.add(cls)
                defs[self.a.models[cls].def_name] = self.model_body(cls)
        if defs:
            schema["$defs"] = dict(sorted(defs.items()))
        return schema

    def model_body(self, cls: type[BaseModel]) -> dict[str, Any]:
        spec = self.a.models[cls]
        out: dict[str, Any] = {"type": "object"}
        if spec.description:
            out["description"] = spec.description
        out["properties"] = {
            f.key: _describe(self.node(f.node), f.description) for f in spec.fields
        }
        out["required"] = [f.key for f in spec.fields]
        out["additionalProperties"] = False
        return out

    def node(self, node: Node) -> dict[str, Any]:
        if isinstance(node, Scalar):
            return self.scalar(node)
        if isinstance(node, LiteralNode | EnumNode):
            return _enum_schema(node.values)
        if isinstance(node, ModelNode):
            self.refs.add(node.cls)
            return {"$ref": f"#/$defs/{self.a.models[node.cls].def_name}"}
        if isinstance(node, NullableNode):
            inner = self.node(node.inner)
            branches = inner["anyOf"] if set(inner) == {"anyOf"} else [inner]
            return {"anyOf": [*branches, {"type": "null"}]}
        if isinstance(node, UnionNode):
            branches = []
            for m in node.members:
                s = self.node(m)
                branches.extend(s["anyOf"] if set(s) == {"anyOf"} else [s])
            return {"anyOf": branches}
        if isinstance(node, SeqNode):
            out: dict[str, Any] = {"type": "array", "items": self.node(node.item)}
            self.array_bounds(out, node.constraints)
            if node.unique:
                out["description"] = "Each item at most once."
            return out
        if isinstance(node, JsonNode):
            return self.node(node.inner)
        if isinstance(node, TupleNode):
            items = [self.node(i) for i in node.items]
            n = len(items)
            if node.as_object:
                keys = [str(i) for i in range(n)]
                return {
                    "type": "object",
                    "properties": dict(zip(keys, items, strict=True)),
                    "required": keys,
                    "additionalProperties": False,
                    "description": f"A tuple of {n} values, keyed by position from 0.",
                }
            return {"type": "array", "items": items[0], "minItems": n, "maxItems": n}
        if isinstance(node, MapNode):
            pair = {
                "type": "object",
                "properties": {"key": self.node(node.key), "value": self.node(node.value)},
                "required": ["key", "value"],
                "additionalProperties": False,
            }
            out = {
                "type": "array",
                "items": pair,
                "description": "Key/value pairs; each key at most once.",
            }
            self.array_bounds(out, node.constraints)
            return out
        raise AssertionError(node)  # pragma: no cover - the node union is closed

    @staticmethod
    def array_bounds(out: dict[str, Any], c: Constraints) -> None:
        if c.min_length:
            out["minItems"] = c.min_length
        if c.max_length is not None:
            out["maxItems"] = c.max_length

    def scalar(self, node: Scalar) -> dict[str, Any]:
        c, kind = node.constraints, node.kind
        notes: list[str] = []
        out: dict[str, Any]
        if kind in ("int", "float"):
            out = {"type": "integer" if kind == "int" else "number"}
            for attr, key in (
                ("ge", "minimum"),
                ("le", "maximum"),
                ("gt", "exclusiveMinimum"),
                ("lt", "exclusiveMaximum"),
                ("multiple_of", "multipleOf"),
            ):
                if getattr(c, attr) is not None:
                    out[key] = _num(getattr(c, attr))
            return out
        if kind == "bool":
            return {"type": "boolean"}
        if kind == "null":
            return {"type": "null"}
        if kind == "ip":
            out = {"anyOf": [{"type": "string", "format": f} for f in ("ipv4", "ipv6")]}
            return out
        out = {"type": "string"}
        if kind in _FORMATS:
            out["format"] = _FORMATS[kind]
        elif kind == "datetime_naive":
            out["pattern"] = _NAIVE_DATETIME
            notes.append("A date and time without a UTC offset, as YYYY-MM-DDTHH:MM:SS.")
        elif kind in ("url", "http_url"):
            out["pattern"] = _URL if kind == "url" else _HTTP_URL
            notes.append("A URL.")
        elif kind == "decimal":
            out["pattern"], digits = _decimal_pattern(c)
            bounds = _bounds_text(c)
            notes.append(
                'A decimal number written as a string, e.g. "1234.50"; '
                + ", ".join([digits, *bounds])
                + "."
            )
        if kind in ("date", "datetime", "datetime_aware", "datetime_naive", "time"):
            bounds = _bounds_text(c)
            if bounds:
                text = ", ".join(bounds)
                notes.append(text[0].upper() + text[1:] + ".")
        if node.note:
            notes.append(node.note)
        if kind == "duration":
            notes.append("An ISO 8601 duration, e.g. P3DT4H30M.")
        if kind in ("str", "email", "url", "http_url"):
            if c.pattern is not None:
                out["pattern"] = c.pattern
            if kind == "str" and not self.string_lengths:
                lengths = length_pattern(c.min_length, c.max_length, c.pattern)
                if isinstance(lengths, str):
                    out["pattern"] = lengths
            if c.min_length is not None and c.min_length == c.max_length:
                notes.append(f"Exactly {c.min_length} characters.")
            elif c.min_length is not None and c.max_length is not None:
                notes.append(f"{c.min_length} to {c.max_length} characters.")
            elif c.min_length:
                notes.append(f"At least {c.min_length} characters.")
            elif c.max_length is not None:
                notes.append(f"At most {c.max_length} characters.")
            if self.string_lengths:
                if c.min_length:
                    out["minLength"] = c.min_length
                if c.max_length is not None:
                    out["maxLength"] = c.max_length
        if notes:
            out["description"] = " ".join(notes)
        return out


def _enum_schema(values: tuple[Any, ...]) -> dict[str, Any]:
    kinds = {_json_type(v) for v in values}
    out: dict[str, Any] = {}
    if len(kinds) == 1:
        out["type"] = kinds.pop()
    elif kinds == {"integer", "number"}:
        out["type"] = "number"
    if len(values) == 1:
        out["const"] = values[0]
    else:
        out["enum"] = list(values)
    return out


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    return "string"
