from __future__ import annotations

import datetime as dt
import ipaddress
import re
import uuid
from typing import Any, Literal

import jsonschema
import pytest
from pydantic import AwareDatetime, BaseModel, EmailStr, Field, TypeAdapter

from extract.providers.testserver.fakegen import answer_seed, expected_answer, generate

SEEDS = range(40)
# jsonschema's "time" check needs the optional rfc3339-validator package and fails every value
# without it; times are checked with Pydantic below instead.
CHECKER = jsonschema.FormatChecker(
    formats=[f for f in jsonschema.FormatChecker.checkers if f != "time"]
)


def obj(props: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A strict object schema: every property required, no additional properties."""
    return {
        "type": "object",
        "properties": props,
        "required": list(props),
        "additionalProperties": False,
        **extra,
    }


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


PERSON = obj(
    {
        "name": {"type": "string", "description": "Full name, at most 40 characters"},
        "age": nullable({"type": "integer", "minimum": 0, "maximum": 120}),
        "email": {"type": "string", "format": "email"},
        "born": {"type": "string", "format": "date"},
        "seen": {"type": "string", "format": "date-time"},
        "wakes": {"type": "string", "format": "time"},
        "id": {"type": "string", "format": "uuid"},
        "host": {"type": "string", "format": "hostname"},
        "v4": {"type": "string", "format": "ipv4"},
        "v6": {"type": "string", "format": "ipv6"},
        "tenure": {"type": "string", "format": "duration"},
        "role": {"enum": ["admin", "editor", "viewer"]},
        "kind": {"const": "person"},
        "active": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
    }
)

TREE = {
    **obj({"root": {"$ref": "#/$defs/Node"}}),
    "$defs": {
        "Node": obj(
            {
                "label": {"type": "string"},
                "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                "parent": nullable({"$ref": "#/$defs/Node"}),
            }
        )
    },
}

NUMBERS = obj(
    {
        "even": {"type": "integer", "minimum": 3, "maximum": 11, "multipleOf": 2},
        "open": {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8},
        "neg": {"type": "integer", "maximum": -50},
        "price": {"type": "number", "minimum": 0, "maximum": 10, "multipleOf": 0.01},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        "exact": {"type": "number", "minimum": 2.5, "maximum": 2.5},
        "pair": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
        "some": {"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 9},
        "multi": {"type": ["string", "null"]},
    }
)

PATTERNS = [
    r"^[A-Z]{2}-\d{3,5}$",
    r"^(EUR|USD|GBP)$",
    r"^\w+@\w+\.(com|org)$",
    r"^[^a-z\s]{4}$",
    r"^INV-\d{4}-[0-9a-f]{6}$",
    r"^\+?\d{1,3}[ -]?\(\d{3}\) \d{3}-\d{4}$",
    r"^(?:ab|cd)*x?y+$",
    r"^(\d)-\1$",
    r"^\S+\s\D\W$",
    r"^.{3}[.]$",
    r"[a-c]+",
]


@pytest.mark.parametrize("schema", [PERSON, TREE, NUMBERS], ids=["person", "tree", "numbers"])
def test_answers_validate_against_their_schema(schema: dict[str, Any]) -> None:
    for seed in SEEDS:
        jsonschema.validate(generate(schema, seed), schema, format_checker=CHECKER)


def test_numbers_honour_bounds_exactly() -> None:
    values = [generate(NUMBERS, seed) for seed in SEEDS]
    assert {v["even"] for v in values} <= {4, 6, 8, 10}
    assert {v["open"] for v in values} <= {6, 7}
    assert all(v["neg"] <= -50 for v in values)
    assert all(v["exact"] == 2.5 for v in values)
    assert all(0 < v["ratio"] < 1 for v in values)
    assert all(len(v["pair"]) == 2 for v in values)
    assert all(1 <= len(v["some"]) <= 4 for v in values)


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_strings_match(pattern: str) -> None:
    schema = obj({"code": {"type": "string", "pattern": pattern}})
    codes = {generate(schema, seed)["code"] for seed in SEEDS}
    for code in codes:
        assert re.search(pattern, code), (pattern, code)
    # A pattern with any freedom in it must not collapse to a single string.
    assert len(codes) > 1


def test_formats_parse_as_their_python_types() -> None:
    for seed in SEEDS:
        p = generate(PERSON, seed)
        assert dt.date.fromisoformat(p["born"])
        seen = TypeAdapter(dt.datetime).validate_python(p["seen"])
        assert seen.tzinfo is not None
        TypeAdapter(AwareDatetime).validate_python(p["seen"])
        TypeAdapter(dt.time).validate_python(p["wakes"])
        TypeAdapter(dt.timedelta).validate_python(p["tenure"])
        TypeAdapter(EmailStr).validate_python(p["email"])
        assert uuid.UUID(p["id"]).version == 4
        ipaddress.IPv4Address(p["v4"])
        ipaddress.IPv6Address(p["v6"])
        assert re.fullmatch(r"[a-z]+\.example\.com", p["host"])
        assert len(p["name"]) <= 24
        assert all(len(t) <= 24 for t in p["tags"])


def _depth(node: dict[str, Any]) -> int:
    below = [_depth(c) for c in node["children"]]
    if node["parent"] is not None:
        below.append(_depth(node["parent"]))
    return 1 + max(below, default=0)


def test_recursion_is_bounded() -> None:
    depths = [_depth(generate(TREE, seed)["root"]) for seed in range(200)]
    assert max(depths) <= 5
    assert max(depths) >= 2  # recursion is exercised, not always cut at the root


def test_same_seed_same_value_different_seed_different_value() -> None:
    assert generate(PERSON, b"row-1") == generate(PERSON, b"row-1")
    assert generate(PERSON, 7) == generate(PERSON, 7)
    assert generate(PERSON, b"row-1") != generate(PERSON, b"row-2")


def test_answers_follow_the_schema_property_order() -> None:
    assert list(generate(PERSON, 1)) == list(PERSON["properties"])
    reordered = obj(dict(reversed(PERSON["properties"].items())))
    assert list(generate(reordered, 1)) == list(reversed(PERSON["properties"]))


def test_unsupported_ref_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="only local"):
        generate(obj({"x": {"$ref": "https://example.com/x.json"}}), 1)


class Address(BaseModel):
    street: str
    postcode: str = Field(pattern=r"^\d{5}$")


class Customer(BaseModel):
    name: str
    status: Literal["new", "active", "churned"]
    since: dt.date
    last_order: dt.datetime | None
    email: EmailStr
    addresses: list[Address]
    score: float = Field(ge=0, le=1)
    referrer: Customer | None


def test_answers_validate_as_pydantic_models() -> None:
    schema = Customer.model_json_schema()
    for seed in SEEDS:
        Customer.model_validate(generate(schema, seed))


MESSAGES = [
    {"role": "system", "content": "Extract the customer."},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Ada, ada@example.com"},
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
        ],
    },
]


def test_answer_seed_ignores_reask_turns() -> None:
    reask = [
        *MESSAGES,
        {"role": "assistant", "content": '{"name": 1}'},
        {"role": "user", "content": "name: Input should be a valid string"},
    ]
    assert answer_seed(reask, 3) == answer_seed(MESSAGES, 3)


def test_answer_seed_depends_on_system_user_text_image_and_seed() -> None:
    base = answer_seed(MESSAGES, 3)
    other_image = [MESSAGES[0], {**MESSAGES[1], "content": [MESSAGES[1]["content"][0]]}]
    other_system = [{"role": "system", "content": "Other."}, MESSAGES[1]]
    other_user = [MESSAGES[0], {"role": "user", "content": "Bob"}]
    variants = {
        base,
        answer_seed(MESSAGES, 4),
        answer_seed(MESSAGES, None),
        answer_seed(other_image, 3),
        answer_seed(other_system, 3),
        answer_seed(other_user, 3),
    }
    assert len(variants) == 6
    assert len(base) == 16


def test_expected_answer_is_generate_of_answer_seed() -> None:
    body = {
        "model": "m",
        "messages": MESSAGES,
        "seed": 5,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "Person", "strict": True, "schema": PERSON},
        },
    }
    assert expected_answer(body) == generate(PERSON, answer_seed(MESSAGES, 5))
    assert expected_answer({"messages": MESSAGES}) == {}
