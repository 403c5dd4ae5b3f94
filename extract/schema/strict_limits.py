"""The documented size limits of strict-mode schemas, checked on a compiled schema.

`schema_problems` checks them; `extract.schema.compile_schema` refuses a schema that breaks any.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = [
    "MAX_CHARS",
    "MAX_DEPTH",
    "MAX_ENUM_VALUES",
    "MAX_PROPERTIES",
    "NAME_RE",
    "schema_problems",
]

NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_PROPERTIES = 5000
MAX_DEPTH = 10
MAX_ENUM_VALUES = 1000
MAX_CHARS = 120_000


# --------------------------------------------------------------------------------------------
# limits


def schema_problems(schema: dict[str, Any], name: str) -> list[str]:
    """Check the documented strict-mode limits; each problem reads `path: reason`.

    Limits: schema name `[a-zA-Z0-9_-]{1,64}`; at most 5000 object properties in all; 10 levels
    of object nesting (recursion through `$ref` is not unrolled); 1000 enum values in all;
    120,000 characters of property names, definition names and enum/const values.
    """
    problems: list[str] = []
    if not NAME_RE.match(name):
        problems.append(f"name {name!r}: must match [a-zA-Z0-9_-]{{1,64}}")
    counts = {"properties": 0, "enum": 0, "chars": 0}
    defs = schema.get("$defs", {})
    counts["chars"] += sum(len(k) for k in defs)

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            props = node.get("properties")
            if isinstance(props, dict):
                counts["properties"] += len(props)
                counts["chars"] += sum(len(k) for k in props)
            if isinstance(node.get("enum"), list):
                counts["enum"] += len(node["enum"])
                counts["chars"] += sum(len(str(v)) for v in node["enum"])
            if "const" in node:
                counts["chars"] += len(str(node["const"]))
            for k, v in node.items():
                if k not in ("enum", "const"):
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(schema)
    if counts["properties"] > MAX_PROPERTIES:
        problems.append(
            f"schema: {counts['properties']} object properties in all, "
            f"the limit is {MAX_PROPERTIES}"
        )
    if counts["enum"] > MAX_ENUM_VALUES:
        problems.append(
            f"schema: {counts['enum']} enum values in all, the limit is {MAX_ENUM_VALUES}"
        )
    if counts["chars"] > MAX_CHARS:
        problems.append(
            f"schema: {counts['chars']} characters of property names, definition names and "
            f"enum values, the limit is {MAX_CHARS}"
        )
    depth, where = _deepest(schema, defs, name)
    if depth > MAX_DEPTH:
        problems.append(f"{where}: {depth} levels of object nesting, the limit is {MAX_DEPTH}")
    return problems


def _deepest(schema: dict[str, Any], defs: dict[str, Any], name: str) -> tuple[int, str]:
    """The deepest chain of nested objects: its depth and the property path that reaches it."""
    best = (0, name)

    def walk(node: Any, depth: int, path: str, stack: tuple[str, ...]) -> None:
        nonlocal best
        if isinstance(node, list):
            for v in node:
                walk(v, depth, path, stack)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = ref[len("#/$defs/") :]
            # a cycle is recursion, which strict mode allows: its depth is not unrolled
            if target not in stack and target in defs:
                walk(defs[target], depth, path, (*stack, target))
            return
        if node.get("type") == "object":
            depth += 1
            if depth > best[0]:
                best = (depth, path)
            for key, sub in node.get("properties", {}).items():
                walk(sub, depth, f"{path}.{key}", stack)
        for k in ("items", "anyOf"):
            if k in node:
                walk(node[k], depth, path, stack)

    walk({k: v for k, v in schema.items() if k != "$defs"}, 0, name, ())
    return best
