"""Turn a completion into a model instance, or a ContentError saying why it cannot be one.

Lenient where it is safe (a JSON object fenced in ``` or wrapped in prose is unwrapped), strict
where it matters (the object must validate against the Pydantic model).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from .client import Completion
from .errors import InvalidOutput, MalformedOutput, Refusal, TruncatedOutput
from .schema import CompiledSchema

__all__ = ["extract_json", "format_errors", "parse_completion"]


def extract_json(text: str) -> Any:
    """Parse JSON content; if that fails, the outermost {...} inside fences or prose."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    start, end = text.find("{"), text.rfind("}")
    if start == -1 or end <= start:
        raise MalformedOutput("the answer is not JSON", raw=text)
    try:
        return json.loads(text[start : end + 1])
    except ValueError as e:
        raise MalformedOutput(f"the answer is not valid JSON: {e}", raw=text) from e


def format_errors(error: ValidationError) -> list[str]:
    """Pydantic errors as `location: message` lines, the form the model is re-asked with."""
    out = []
    for err in error.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(root)"
        out.append(f"{loc}: {err['msg']}")
    return out


def parse_completion(completion: Completion, compiled: CompiledSchema) -> BaseModel:
    """The validated instance for a completion; raises a ContentError subclass otherwise."""
    content = completion.content
    if completion.refusal:
        raise Refusal(f"the model refused: {completion.refusal}", raw=completion.refusal)
    if completion.finish_reason == "length":
        raise TruncatedOutput(
            "the answer was cut off at max_tokens"
            + (" while still reasoning" if not content else ""),
            raw=content or "",
        )
    if content is None or not content.strip():
        if completion.reasoning:
            raise TruncatedOutput("the reply carried only reasoning and no answer", raw="")
        raise MalformedOutput("the answer is empty", raw="")
    try:
        # One pass in pydantic-core: JSON parsing and validation together.
        return compiled.parse(content)
    except ValidationError as e:
        if not _not_json(e):
            raise _invalid(e, content) from e
    except ValueError:
        pass  # the JSON parser's own error, where the model's wire form is decoded first
    # Not JSON as it stands: perhaps fenced in ``` or wrapped in prose.
    data = extract_json(content)
    if not isinstance(data, dict):
        raise InvalidOutput(
            "the answer is not a JSON object",
            raw=content,
            errors=["(root): expected a JSON object"],
        )
    try:
        return compiled.parse(data)
    except ValidationError as e:
        raise _invalid(e, content) from e


def _not_json(error: ValidationError) -> bool:
    return any(err["type"] == "json_invalid" for err in error.errors(include_url=False))


def _invalid(error: ValidationError, content: str) -> InvalidOutput:
    errors = format_errors(error)
    return InvalidOutput(
        f"the answer does not match the schema: {'; '.join(errors[:5])}",
        raw=content,
        errors=errors,
    )
