"""extract.schema: strict schemas, the wire codec, limits and refusals."""

from __future__ import annotations

import decimal
import hashlib
import json
import time
from pathlib import Path
from typing import Any, Literal

import pytest
from corpus import CORPUS, PYDANTIC_ONLY, Flat, Inventory, Outline, samples
from pydantic import BaseModel, ConfigDict, Field, RootModel, ValidationError, create_model
from strict_rules import violations

from extract.errors import ConfigError, SchemaError
from extract.schema import CompiledSchema, compile_schema, load_model, schema_problems


@pytest.mark.parametrize("name", list(CORPUS))
def test_corpus_schema_obeys_every_strict_rule(name: str) -> None:
    compiled = compile_schema(CORPUS[name])
    assert violations(compiled.schema, compiled.name) == []
    assert schema_problems(compiled.schema, compiled.name) == []
    # the checker refuses every keyword outside the allowed list: title, default, oneOf, ...
    assert compiled.response_format == {
        "type": "json_schema",
        "json_schema": {"name": name, "strict": True, "schema": compiled.schema},
    }


@pytest.mark.parametrize("name", list(CORPUS))
def test_generated_replies_decode_and_validate(name: str) -> None:
    valid, rejected = samples(name)
    assert len(valid) >= 3, f"only {len(valid)} of {len(valid) + len(rejected)} passed"
    if name not in PYDANTIC_ONLY:
        assert rejected == []
    compiled = compile_schema(CORPUS[name])
    for instance in valid:
        assert isinstance(instance, CORPUS[name])
        wire = compiled.encode(instance)
        json.dumps(wire)  # JSON-able
        assert compiled.parse(wire) == instance


def test_exact_schema_flat() -> None:
    assert compile_schema(Flat).schema == {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "score": {"type": "number"},
            "active": {"type": "boolean"},
        },
        "required": ["name", "count", "score", "active"],
        "additionalProperties": False,
    }


class Review(BaseModel):
    """A review."""

    stars: int = Field(ge=1, le=5, description="Stars.")
    text: str | None = Field(max_length=200)
    tone: Literal["good", "bad"]
    price: decimal.Decimal = Field(max_digits=6, decimal_places=2)


def test_exact_schema_constraints_descriptions_decimal() -> None:
    assert compile_schema(Review).schema == {
        "type": "object",
        "description": "A review.",
        "properties": {
            "stars": {"type": "integer", "minimum": 1, "maximum": 5, "description": "Stars."},
            "text": {"anyOf": [{"type": "string", "pattern": r"^[\s\S]{0,200}$",
                                "description": "At most 200 characters."},
                               {"type": "null"}]},
            "tone": {"type": "string", "enum": ["good", "bad"]},
            "price": {
                "type": "string",
                "pattern": r"^-?[0-9]{1,4}(\.[0-9]{1,2})?$",
                "description": 'A decimal number written as a string, e.g. "1234.50"; '
                               "at most 4 digits before the point and 2 after.",
            },
        },
        "required": ["stars", "text", "tone", "price"],
        "additionalProperties": False,
    }


def test_exact_schema_dicts_and_defs() -> None:
    schema = compile_schema(Inventory).schema
    pair = {"type": "object", "properties": {"key": {"type": "string"},
                                             "value": {"type": "integer"}},
            "required": ["key", "value"], "additionalProperties": False}
    assert schema["properties"]["counts"] == {
        "type": "array", "items": pair, "description": "Key/value pairs; each key at most once."
    }
    assert schema["properties"]["places"]["items"]["properties"]["value"] == {
        "$ref": "#/$defs/Address"
    }
    assert schema["$defs"] == {"Address": {
        "type": "object",
        "description": "A postal address.",
        "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                       "postcode": {"anyOf": [{"type": "string"}, {"type": "null"}]}},
        "required": ["street", "city", "postcode"],
        "additionalProperties": False,
    }}


def test_exact_schema_recursive_and_described_ref() -> None:
    schema = compile_schema(Outline).schema
    assert schema["properties"]["root"] == {"$ref": "#/$defs/TreeNode"}
    assert schema["properties"]["extra"] == {
        "anyOf": [{"$ref": "#/$defs/TreeNode"}, {"type": "null"}]
    }
    assert schema["$defs"]["TreeNode"]["properties"]["children"] == {
        "type": "array", "items": {"$ref": "#/$defs/TreeNode"}
    }
    described = compile_schema(CORPUS["Described"]).schema["properties"]["origin"]
    assert described == {"anyOf": [{"$ref": "#/$defs/Address"}],
                         "description": "Where the product shipped from."}


def test_discriminated_union_is_any_of() -> None:
    schema = compile_schema(CORPUS["Payment"]).schema
    assert schema["properties"]["detail"] == {
        "anyOf": [{"$ref": "#/$defs/CardPayment"}, {"$ref": "#/$defs/BankPayment"}]
    }
    assert schema["$defs"]["CardPayment"]["properties"]["method"] == {
        "type": "string", "const": "card"
    }


def test_parse_decodes_key_value_lists_inside_unions() -> None:
    compiled = compile_schema(CORPUS["Payment"])
    reply = {"amount": "12.50",
             "detail": {"method": "bank", "iban": "X", "meta": [{"key": "a", "value": "b"}]},
             "history": [{"method": "card", "last4": "1234"}]}
    payment = compiled.parse(json.dumps(reply))
    assert payment.model_dump(mode="json") == {
        "amount": "12.50",
        "detail": {"method": "bank", "iban": "X", "meta": {"a": "b"}},
        "history": [{"method": "card", "last4": "1234"}],
    }
    assert compiled.encode(payment) == reply


def test_root_recursion_uses_defs() -> None:
    class Node(BaseModel):
        name: str
        kids: list[Node]

    schema = compile_schema(Node).schema
    assert schema["properties"]["kids"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert schema["$defs"]["Node"]["properties"] == schema["properties"]
    assert violations(schema) == []


def test_hash_is_sha256_of_canonical_response_format() -> None:
    compiled = compile_schema(Flat)
    canonical = json.dumps(compiled.response_format, sort_keys=True, separators=(",", ":"))
    assert compiled.hash == hashlib.sha256(canonical.encode()).hexdigest()
    assert compile_schema(Flat).hash == compiled.hash
    assert compile_schema(Flat, name="other").hash != compiled.hash


def test_parse_skips_decoding_for_plain_models_and_is_fast() -> None:
    compiled = compile_schema(Flat)
    assert not compiled.needs_decoding
    assert compile_schema(Inventory).needs_decoding
    data = {"name": "a", "count": 1, "score": 1.5, "active": True}
    n = 5000
    start = time.perf_counter()
    for _ in range(n):
        Flat.model_validate(data)
    plain = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(n):
        compiled.parse(data)
    ours = time.perf_counter() - start
    assert (ours - plain) / n < 20e-6


def test_parse_raises_validation_error() -> None:
    with pytest.raises(ValidationError):
        compile_schema(Flat).parse({"name": "a"})
    with pytest.raises(ValidationError):
        compile_schema(Inventory).parse({"counts": "nope", "places": [], "labels": None})


# ---- refusals: the exact messages a user sees ------------------------------------------------


class Inner(BaseModel):
    sub: Any


class WithAny(BaseModel):
    field: Inner


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")
    a: int


class HasOpen(BaseModel):
    inner: Open


class Listy(RootModel[list[int]]):
    pass


class BareList(BaseModel):
    items: list  # type: ignore[type-arg]


class Bytes(BaseModel):
    blob: bytes


class ModelKeys(BaseModel):
    by: dict[tuple[int, int], int]


@pytest.mark.parametrize(
    ("model", "message", "path"),
    [
        (WithAny, "WithAny.field.sub: typing.Any cannot be expressed in strict mode; give the "
                  "field a concrete type", "WithAny.field.sub"),
        (HasOpen, "HasOpen.inner: Open allows extra fields (extra='allow'), which strict mode "
                  "cannot express; use extra='forbid' or 'ignore'", "HasOpen.inner"),
        (Open, "Open: Open allows extra fields (extra='allow'), which strict mode cannot express; "
               "use extra='forbid' or 'ignore'", "Open"),
        (Listy, "Listy: the root must be an object with named fields; a RootModel is not",
         "Listy"),
        (BareList, "BareList.items: typing.Any cannot be expressed in strict mode; give the list "
                   "an item type", "BareList.items"),
        (Bytes, "Bytes.blob: bytes cannot be answered in strict mode (a model writes text, not "
                "raw bytes); declare str, or Base64Str if the value is base64 text", "Bytes.blob"),
        (ModelKeys, "ModelKeys.by: dict keys must be str, int, an Enum or a Literal",
         "ModelKeys.by"),
    ],
)
def test_refusals_name_the_field_and_reason(
    model: type[BaseModel], message: str, path: str
) -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(model)
    assert str(info.value) == message
    assert info.value.field_path == path


def test_bad_schema_name() -> None:
    with pytest.raises(SchemaError) as info:
        compile_schema(Flat, name="has space")
    assert str(info.value) == "Flat: schema name 'has space' must match [a-zA-Z0-9_-]{1,64}"


def test_limits_enum_values_and_depth() -> None:
    many = create_model("Many", **{f"f{i}": (Literal[tuple(f"v{j}" for j in range(60))], ...)
                                   for i in range(17)})  # type: ignore[call-overload]
    with pytest.raises(SchemaError) as info:
        compile_schema(many)
    assert str(info.value) == (
        "Many: the schema exceeds strict-mode limits: schema: 1020 enum values in all, "
        "the limit is 1000"
    )
    assert info.value.problems == ["schema: 1020 enum values in all, the limit is 1000"]

    level: type[BaseModel] = create_model("L11", leaf=(int, ...))
    for i in range(10, 0, -1):
        level = create_model(f"L{i}", child=(level, ...))
    with pytest.raises(SchemaError) as info:
        compile_schema(level)
    assert info.value.problems == [
        "L1.child.child.child.child.child.child.child.child.child.child: 11 levels of object "
        "nesting, the limit is 10"
    ]


def test_schema_problems_counts_properties_and_characters() -> None:
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5001)},
            "required": [f"p{i}" for i in range(5001)], "additionalProperties": False}
    assert schema_problems(wide, "x" * 65) == [
        f"name {'x' * 65!r}: must match [a-zA-Z0-9_-]{{1,64}}",
        "schema: 5001 object properties in all, the limit is 5000",
    ]
    long_enum = {"type": "object", "properties": {"a": {"type": "string",
                                                        "enum": ["x" * 121_000]}},
                 "required": ["a"], "additionalProperties": False}
    assert schema_problems(long_enum, "ok") == [
        "schema: 121001 characters of property names, definition names and enum values, "
        "the limit is 120000"
    ]


# ---- load_model ------------------------------------------------------------------------------


MODEL_SOURCE = '''
from pydantic import BaseModel

class Ticket(BaseModel):
    subject: str

NOT_A_MODEL = 3
'''


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    pkg = tmp_path / "myschemas_t2"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ticket.py").write_text(MODEL_SOURCE)
    (tmp_path / "loose.py").write_text(MODEL_SOURCE)
    return tmp_path


def test_load_model_by_module_and_by_file(schema_dir: Path) -> None:
    by_module = load_model("myschemas_t2.ticket:Ticket", schema_dir)
    by_file = load_model("loose.py:Ticket", schema_dir)
    assert by_module.__name__ == by_file.__name__ == "Ticket"
    assert by_file.model_validate({"subject": "x"}).subject == "x"  # type: ignore[attr-defined]
    assert isinstance(compile_schema(by_file), CompiledSchema)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("myschemas_t2.ticket:Nope",
         "schema 'myschemas_t2.ticket:Nope': module 'myschemas_t2.ticket' has no class 'Nope'"),
        ("myschemas_t2.ticket:NOT_A_MODEL",
         "schema 'myschemas_t2.ticket:NOT_A_MODEL': 'NOT_A_MODEL' is not a pydantic BaseModel "
         "subclass"),
        ("nosuchpkg_t2.x:Y", "schema 'nosuchpkg_t2.x:Y': no module named 'nosuchpkg_t2'"),
        ("loose.py:Nope", "schema 'loose.py:Nope': file 'loose.py' has no class 'Nope'"),
        ("justaname", "schema 'justaname': expected 'package.module:Class' or 'file.py:Class'"),
    ],
)
def test_load_model_errors(schema_dir: Path, ref: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_model(ref, schema_dir)
    assert str(info.value) == message
    assert not isinstance(info.value, SchemaError)


def test_load_model_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_model("gone.py:X", tmp_path)
    missing = str(tmp_path / "gone.py")
    assert str(info.value) == f"schema 'gone.py:X': file {missing!r} does not exist"


def test_string_lengths_for_grammar_servers() -> None:
    """Strict mode has no maxLength, so lengths go into a pattern and the description; a
    grammar-constrained local server enforces the keywords, so for it they are emitted instead
    of the pattern."""
    from pydantic import BaseModel, Field

    class Named(BaseModel):
        name: str = Field(min_length=2, max_length=40)

    strict = compile_schema(Named).schema["properties"]["name"]
    assert strict == {
        "type": "string", "pattern": r"^[\s\S]{2,40}$", "description": "2 to 40 characters."
    }
    local = compile_schema(Named, string_lengths=True).schema["properties"]["name"]
    assert local == {
        "type": "string",
        "minLength": 2,
        "maxLength": 40,
        "description": "2 to 40 characters.",
    }
