"""A split row's parts' results joined into the row's one RowResult.

Requests and usage are summed over the parts; `_attempts` is the most any part took (a part's
re-asks are its own); the model, provider and ids are the last part's. If a part failed, the row
fails with that part's error, its message saying which part. Otherwise the parts' answers are
merged (merge.py) and the merged answer must validate against the schema again; it is grounded
in the row's whole text, so its offsets are offsets into the original column, whichever parts
its values came from. `_confidence` stays null (a merged value has no one token probability);
`_min_confidence` is the lowest of the parts'.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

from pydantic import ValidationError

from ..errors import MergeFailed
from ..results import RowResult
from ..schema import CompiledSchema
from ..trust.assess import Assessor
from ..validate import format_errors
from .merge import Merger
from .parts import Part

__all__ = ["combine"]


def combine(
    result: RowResult,
    parts: Sequence[Part],
    answers: Sequence[RowResult | None],
    *,
    merger: Merger,
    compiled: CompiledSchema,
    assessor: Assessor,
    texts: Mapping[str, str] | None,
) -> RowResult:
    """Fill `result` (the row's) from its parts' results, in part order (None: a part cancelled
    after another failed)."""
    n = len(parts)
    result.parts = n
    done = [a for a in answers if a is not None]
    for a in done:
        result.usage.add(a.usage)
        result.requests += a.requests
        result.attempts = max(result.attempts, a.attempts)
    if done:
        last = done[-1]
        for name in ("model", "provider", "finish_reason", "batch_id", "generation_id"):
            setattr(result, name, getattr(last, name))
        result.system_fingerprint = last.system_fingerprint
    for part, answer in zip(parts, answers, strict=True):
        if answer is not None and not answer.ok:
            result.error_class = answer.error_class
            result.message = (
                f"part {part.index} of {n} (characters {part.start}-{part.end} of column "
                f"{part.column!r}): {answer.message}"
            )
            result.raw_output = answer.raw_output
            return result
    assert all(a is not None and a.instance is not None for a in answers)
    wire = merger.merge([compiled.encode(a.instance) for a in done if a.instance is not None])
    try:
        result.instance = compiled.parse(wire)
    except ValidationError as e:
        errors = format_errors(e)
        error = MergeFailed(
            f"the merged answer of {n} parts does not validate: {'; '.join(errors)}",
            raw=json.dumps(wire, ensure_ascii=False),
            errors=errors,
        )
        result.error_class = type(error).__name__
        result.message = str(error)
        result.raw_output = error.raw
        return result
    assessor.assess(result, None, texts)
    lows = [a.min_confidence for a in done]
    result.min_confidence = None if None in lows else min(x for x in lows if x is not None)
    return result
