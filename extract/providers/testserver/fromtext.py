"""`ServerConfig.answer_from_text`: answers that depend on what the request says, so that a test
can tell which text an answer came from (the parts of a split row, say).

A line `@field: <JSON>` in the first user message sets the answer's top-level `field` to that
value; a list field collects the values of all its lines (a JSON list adds its items). A field
no line names is null where the schema allows null, an empty list for a list, and the made-up
value otherwise.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["from_text"]

_LINE = re.compile(r"^@([A-Za-z_][A-Za-z0-9_]*): (.+)$", re.MULTILINE)


def _user_text(messages: list[Any]) -> str:
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                texts = (p.get("text") for p in content if isinstance(p, dict))
                return "\n".join(t for t in texts if isinstance(t, str))
            return ""
    return ""


def _types(schema: Any) -> set[str]:
    if not isinstance(schema, dict):
        return set()
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set()
    for option in schema.get("anyOf") or ():
        found |= _types(option)
    return found


def from_text(value: dict[str, Any], messages: list[Any], schema: dict[str, Any]) -> dict[str, Any]:
    """`value` (the made-up answer) with its top-level fields taken from the request's text."""
    named: dict[str, list[Any]] = {}
    for m in _LINE.finditer(_user_text(messages)):
        try:
            named.setdefault(m.group(1), []).append(json.loads(m.group(2)))
        except ValueError:
            continue
    out = dict(value)
    for key, prop in (schema.get("properties") or {}).items():
        types = _types(prop)
        given = named.get(key)
        if "array" in types:
            items: list[Any] = []
            for v in given or ():
                items.extend(v if isinstance(v, list) else [v])
            out[key] = items if given or "null" not in types else None
        elif given:
            out[key] = given[0]
        elif "null" in types:
            out[key] = None
    return out
