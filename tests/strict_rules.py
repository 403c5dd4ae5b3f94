"""An independent checker of the strict JSON Schema rules, written from
shared/reference/openrouter-api.md ("Strict JSON Schema rules"), not from extract.schema.

`violations(schema, name)` returns every broken rule as "path: rule". One rule is stricter than
the document: a `$ref` may carry no sibling keyword (OpenAI's strict mode rejects
`{"$ref": ..., "description": ...}`), plus the issue's own rules: no `title`, no `default`.
"""

from __future__ import annotations

import re
from typing import Any

ALLOWED_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}
ALLOWED_FORMATS = {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6",
                   "uuid"}
STRING_KEYS = {"pattern", "format"}
NUMBER_KEYS = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
ARRAY_KEYS = {"items", "minItems", "maxItems"}
OBJECT_KEYS = {"properties", "required", "additionalProperties"}
GENERAL_KEYS = {"type", "description", "enum", "const", "anyOf", "$ref", "$defs"}
ALLOWED_KEYS = STRING_KEYS | NUMBER_KEYS | ARRAY_KEYS | OBJECT_KEYS | GENERAL_KEYS
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def violations(schema: dict[str, Any], name: str = "Schema") -> list[str]:
    out: list[str] = []
    if not NAME.match(name):
        out.append(f"name {name!r}: does not match [a-zA-Z0-9_-]{{1,64}}")
    if schema.get("type") != "object" or "anyOf" in schema:
        out.append("$: the root must be an object, not anyOf")
    defs = schema.get("$defs", {})
    totals = {"props": 0, "enums": 0, "chars": sum(len(k) for k in defs)}

    def check(node: Any, path: str) -> None:
        if not isinstance(node, dict):
            out.append(f"{path}: a schema must be an object")
            return
        for key in node:
            if key not in ALLOWED_KEYS:
                out.append(f"{path}: keyword {key!r} is not allowed")
        if "$ref" in node:
            if len(node) > 1:
                out.append(f"{path}: $ref carries sibling keywords {sorted(set(node) - {'$ref'})}")
            ref = node["$ref"]
            if ref != "#" and not (ref.startswith("#/$defs/") and ref[8:] in defs):
                out.append(f"{path}: $ref {ref!r} does not resolve")
        types = node.get("type")
        type_set = set(types) if isinstance(types, list) else {types} if types else set()
        if type_set - ALLOWED_TYPES:
            out.append(f"{path}: type {types!r} is not allowed")
        if "format" in node and node["format"] not in ALLOWED_FORMATS:
            out.append(f"{path}: format {node['format']!r} is not allowed")
        for group, kind in ((STRING_KEYS, "string"), (NUMBER_KEYS, "number"),
                            (ARRAY_KEYS, "array")):
            used = group & set(node)
            ok = {"number", "integer"} if kind == "number" else {kind}
            if used and not (type_set & ok):
                out.append(f"{path}: {sorted(used)} need type {kind}")
        if "object" in type_set:
            if node.get("additionalProperties") is not False:
                out.append(f"{path}: additionalProperties must be false")
            props = node.get("properties", {})
            if sorted(node.get("required", [])) != sorted(props):
                out.append(f"{path}: every property must be required")
            totals["props"] += len(props)
            totals["chars"] += sum(len(k) for k in props)
            for key, sub in props.items():
                check(sub, f"{path}.{key}")
        elif "additionalProperties" in node or "properties" in node:
            out.append(f"{path}: properties on a non-object")
        if "items" in node:
            check(node["items"], f"{path}[]")
        if "anyOf" in node:
            if not isinstance(node["anyOf"], list) or not node["anyOf"]:
                out.append(f"{path}: anyOf must be a non-empty list")
            for i, sub in enumerate(node.get("anyOf") or []):
                check(sub, f"{path}|{i}")
        if "enum" in node:
            totals["enums"] += len(node["enum"])
            totals["chars"] += sum(len(str(v)) for v in node["enum"])
        if "const" in node:
            totals["chars"] += len(str(node["const"]))

    check({k: v for k, v in schema.items() if k != "$defs"}, "$")
    for def_name, sub in defs.items():
        check(sub, f"$defs.{def_name}")
    if totals["props"] > 5000:
        out.append(f"$: {totals['props']} properties exceed 5000")
    if totals["enums"] > 1000:
        out.append(f"$: {totals['enums']} enum values exceed 1000")
    if totals["chars"] > 120_000:
        out.append(f"$: {totals['chars']} characters exceed 120000")
    depth = _depth(schema, defs, schema, ())
    if depth > 10:
        out.append(f"$: nesting depth {depth} exceeds 10")
    return out


def _depth(node: Any, defs: dict[str, Any], root: dict[str, Any], seen: tuple[str, ...]) -> int:
    """Levels of nested objects below and including `node`; recursion counts once."""
    if isinstance(node, list):
        return max((_depth(n, defs, root, seen) for n in node), default=0)
    if not isinstance(node, dict):
        return 0
    if "$ref" in node:
        target = node["$ref"][8:]
        if target in seen or target not in defs:
            return 0
        return _depth(defs[target], defs, root, (*seen, target))
    here = 1 if node.get("type") == "object" else 0
    below = [_depth(v, defs, root, seen) for v in node.get("properties", {}).values()]
    below += [_depth(node[k], defs, root, seen) for k in ("items", "anyOf") if k in node]
    return here + max(below, default=0)


def for_generation(schema: dict[str, Any], depth: int = 3) -> dict[str, Any]:
    """A copy that hypothesis-jsonschema can draw from: `$ref`s inlined (recursion cut off after
    `depth` levels, where only empty lists or null remain possible) and integers kept within
    BIGINT, the column type they land in."""
    defs = schema.get("$defs", {})

    def walk(node: Any, budget: dict[str, int]) -> Any:
        if isinstance(node, list):
            return [walk(n, budget) for n in node]
        if not isinstance(node, dict):
            return node
        if "$ref" in node:
            target = node["$ref"][8:]
            if budget.get(target, 0) >= depth:
                return {"not": {}}
            return walk(defs[target], {**budget, target: budget.get(target, 0) + 1})
        out = {}
        for key, value in node.items():
            if key == "$defs":
                continue
            if key == "properties":
                out[key] = {k: walk(v, budget) for k, v in value.items()}
            elif key in ("items", "anyOf"):
                out[key] = walk(value, budget)
            else:
                out[key] = value
        if out.get("type") == "integer":
            out.setdefault("minimum", -(2**63))
            out.setdefault("maximum", 2**63 - 1)
        if "anyOf" in out:  # drop branches that were cut off, so the generator never tries them
            out["anyOf"] = [b for b in out["anyOf"] if b != {"not": {}}] or [{"not": {}}]
        if out.get("type") == "array" and out.get("items") == {"not": {}}:
            out["maxItems"] = 0
            out.pop("minItems", None)
        return out

    return walk(schema, {})
