"""A split row's parts' results joined into the row's one RowResult.

Requests and usage are summed over the parts this run asked (a part answered from the cache
costs nothing); `_attempts` is the most any of them took (a part's re-asks are its own); the
model, provider and ids are the last part's. The parts asked are kept on the result
(`part_answers`), so that the ledger caches their answers too. If a part failed, the row
fails with that part's error, its message saying which part. Otherwise the parts' answers are
merged (merge.py) and the merged answer must validate against the schema again.

Trust: a value taken from one part keeps what that part learnt about it. Its grounding is where
the part found it, its offsets shifted by the part's start in the split column, so they are
offsets into the original text; its confidence and margin are the part's. A value no one part
gave (a `concat` of several) is grounded in the row's whole text and has no confidence.
`_min_confidence` is the lowest confidence of the merged answer's values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from ..errors import MergeFailed
from ..results import RowResult
from ..schema import CompiledSchema
from ..trust.assess import Assessor
from ..trust.shape import Leaf, mirror, value_at
from ..validate import format_errors
from .merge import Merger, Origins
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
    # what this run paid for (a part from the cache cost nothing now), and what it may cache
    result.part_answers = [a for a in done if not a.from_cache]
    for a in result.part_answers:
        result.usage.add(a.usage)
        result.requests += a.requests
        result.attempts = max(result.attempts, a.attempts)
    if done and not result.part_answers:
        result.usage.cost_usd = 0.0  # every part from the cache: nothing was paid
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
    wire, origins = merger.trace(
        [compiled.encode(a.instance) for a in done if a.instance is not None]
    )
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
    # the whole text's grounding first: what no one part gave is looked for there
    assessor.assess(result, None, texts)
    _Trust(parts, done, origins).apply(result, assessor, wire)
    return result


_CUT = re.compile(r"[.\[]")


class _Trust:
    """The parts' trust slots, looked up for the merged answer's values."""

    def __init__(self, parts: Sequence[Part], answers: Sequence[RowResult], origins: Origins):
        self.parts = parts
        self.answers = answers
        self.origins = origins

    def source(self, path: str) -> tuple[int, str] | None:
        """(part, path there) of the merged value at `path`, from the deepest origin above it."""
        cuts = [m.start() for m in _CUT.finditer(path)]
        for end in [len(path), *reversed(cuts)]:
            found = self.origins.get(path[:end])
            if found is not None:
                part, there = found
                return part, there + path[end:]
        return None

    def apply(self, result: RowResult, assessor: Assessor, wire: Any) -> None:
        whole = result.grounding
        confidence = any(a.confidence is not None for a in self.answers)
        margins: dict[str, float] = {}
        lowest: list[float] = []

        def grounding(_: Leaf, __: Any, path: str) -> Any:
            slot = value_at(whole, path) if whole is not None else None
            found = self.source(path)
            if found is None:
                return slot
            i, there = found
            theirs = self.answers[i].grounding
            own = value_at(theirs, there) if theirs is not None else None
            if not isinstance(own, dict) or own.get("status") == "none":
                return slot  # not in its own part: wherever the whole text has it
            part = self.parts[i]
            if own.get("column") == part.column:
                own = {**own, "start": own["start"] + part.start, "end": own["end"] + part.start}
            return own

        def probability(_: Leaf, __: Any, path: str) -> Any:
            found = self.source(path)
            if found is None:
                return None
            i, there = found
            answer = self.answers[i]
            p = value_at(answer.confidence, there) if answer.confidence is not None else None
            if isinstance(p, float):
                lowest.append(p)
            if answer.margins and there in answer.margins:
                margins[path] = answer.margins[there]
            return p if isinstance(p, float) else None

        if whole is not None:
            result.grounding = mirror(assessor.shape, wire, grounding)
            missing = 0

            def count(_: Leaf, slot: Any, __: str) -> None:
                nonlocal missing
                missing += isinstance(slot, dict) and slot.get("status") == "none"

            mirror(assessor.shape, result.grounding, count)
            result.ungrounded = missing
        if confidence:
            result.confidence = mirror(assessor.shape, wire, probability)
            result.margins = margins
            result.min_confidence = min(lowest) if lowest else None
