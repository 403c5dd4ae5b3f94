"""The schemas the test server accepts: the strict-mode check, and each schema compiled once."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from extract.providers.testserver import fakegen

__all__ = ["Prepared", "prepare", "schema_problem"]

_FORBIDDEN_KEYWORDS = (
    "allOf",
    "oneOf",
    "not",
    "if",
    "then",
    "else",
    "patternProperties",
    "prefixItems",
    "dependentRequired",
    "dependentSchemas",
)


# --------------------------------------------------------------------------- strict-schema check


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not strict-mode compliant (the basics), or None when it is."""
    if not isinstance(schema, dict):
        return "schema must be a JSON object"
    if schema.get("type") != "object":
        return "root schema must be of type object (not anyOf or another type)"
    return _walk(schema, "#")


def _walk(schema: Any, where: str) -> str | None:
    if not isinstance(schema, dict):
        return None if isinstance(schema, bool) else f"{where}: schema must be an object"
    for keyword in _FORBIDDEN_KEYWORDS:
        if keyword in schema:
            return f"{where}: keyword {keyword!r} is not allowed in strict mode"
    if schema.get("default") is not None:
        return f"{where}: a non-null default is not allowed in strict mode"
    kind = schema.get("type")
    is_object = kind == "object" or (isinstance(kind, list) and "object" in kind)
    if is_object or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"{where}: object must set additionalProperties to false"
        props = schema.get("properties") or {}
        required = schema.get("required") or []
        missing = [name for name in props if name not in required]
        if missing:
            return f"{where}: properties {', '.join(missing)} missing from required"
        for name, sub in props.items():
            if problem := _walk(sub, f"{where}/properties/{name}"):
                return problem
    if "items" in schema and (problem := _walk(schema["items"], f"{where}/items")):
        return problem
    for i, sub in enumerate(schema.get("anyOf") or []):
        if problem := _walk(sub, f"{where}/anyOf/{i}"):
            return problem
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            if problem := _walk(sub, f"{where}/{key}/{name}"):
                return problem
    return None


@dataclass(frozen=True)
class Prepared:
    """A schema checked and compiled: why it is refused, or its answer generator."""

    problem: str | None
    node: fakegen.Node | None
    required: tuple[str, ...]


@functools.lru_cache(maxsize=256)
def prepare(schema_text: str) -> Prepared:
    """Check and compile a schema once; the benchmark sends the same schema thousands of times."""
    schema = json.loads(schema_text)
    problem = schema_problem(schema)
    if problem:
        return Prepared(problem, None, ())
    try:
        node = fakegen.compile_schema(schema_text)
    except ValueError as e:
        return Prepared(f"the test server cannot answer this schema: {e}", None, ())
    return Prepared(None, node, tuple(schema.get("required") or ()))
