"""Turn a completion into a model instance, or a ContentError saying why it cannot be one; and
the re-ask that follows an unusable answer.

Lenient where it is safe (a JSON object fenced in ``` or wrapped in prose is unwrapped), strict
where it matters (the object must validate against the Pydantic model).

A re-ask is a *changed* request: the first turn, the bad answer (cut to REASK_ANSWER_CHARS) and
what was wrong with it. Only the latest bad answer is sent, so the conversation stays bounded.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import (
    ContentError,
    InvalidOutput,
    MalformedOutput,
    Refusal,
    RepeatedFailure,
    TruncatedOutput,
    Ungrounded,
)
from .schema import CompiledSchema
from .transport.base import Completion

__all__ = ["REASK_ANSWER_CHARS", "extract_json", "format_errors", "parse_completion", "reask"]

#: characters of a bad answer sent back in a re-ask; longer ones are cut (bounded conversation)
REASK_ANSWER_CHARS = 8000

Message = dict[str, Any]


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


def reask(
    first_turn: list[Message],
    completion: Completion | None,
    error: ContentError,
    *,
    reasoning_details: bool = False,
    attempt: int = 1,
) -> list[Message]:
    """The messages of the request that follows an unusable answer.

    `completion` is the reply that carried it (None when no answer came back, as after a
    RepeatedFailure); `reasoning_details`: hand the model its own reasoning back unchanged
    (OpenRouter), so it can continue from it. `attempt` numbers the note after a repeated
    failure, so no two re-asks of a row are the same request.
    """
    if isinstance(error, RepeatedFailure) or completion is None:
        note = (
            f"Attempt {attempt} to answer this failed on the server "
            f"({error.body[:300] or error}). Reply with only the JSON object."
            if isinstance(error, RepeatedFailure)
            else "Reply with only the JSON object."
        )
        return [*first_turn, {"role": "user", "content": note}]
    answer = (error.raw or completion.content or "")[:REASK_ANSWER_CHARS]
    assistant: Message = {"role": "assistant", "content": answer}
    if reasoning_details and completion.reasoning_details:
        assistant["reasoning_details"] = completion.reasoning_details
    if isinstance(error, TruncatedOutput):
        problem = (
            "Your answer was cut off before it was complete. Reply again with only the JSON "
            "object, complete and concise."
        )
    elif isinstance(error, Ungrounded):
        listed = "\n- ".join(
            f"{path}: {value[:200]!r}"
            for path, value in zip(error.paths, error.values, strict=True)
        )
        problem = (
            "These values are not found in the input text:\n- "
            + listed
            + "\nCopy each value exactly as the text writes it, or use null when the text does "
            "not give it. Reply with only the corrected JSON object."
        )
    else:
        details = getattr(error, "errors", None) or [str(error)]
        problem = (
            "Your answer was not valid for the required JSON schema:\n- "
            + "\n- ".join(details[:20])
            + "\nReply with only the corrected JSON object."
        )
    return [*first_turn, assistant, {"role": "user", "content": problem}]
