"""What a run learns about each validated answer beyond its validity: how sure the model was of
each value (from token log-probabilities) and where in the input text each value stands.

The runner calls `Assessor.assess` once per validated answer; `required_missing` turns values
that `run.require_grounding` names but the text does not hold into an `Ungrounded` error, which
the runner re-asks like any unusable answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..config import PipelineConfig
from ..errors import ConfigError, Ungrounded
from ..results import RowResult
from ..schema import CompiledSchema
from ..transport.base import Completion
from .confidence import after_grammar, tokens_from_reply, value_confidence
from .grounding import GROUNDABLE_KINDS, ground
from .shape import field_path, leaf_paths, mirror, model_shape, value_at

__all__ = ["Assessor"]


class Assessor:
    """Confidence and grounding for one pipeline's answers."""

    def __init__(
        self,
        config: PipelineConfig,
        compiled: CompiledSchema,
        *,
        logprobs: bool,
        before_grammar: bool = False,
    ):
        run = config.run
        self.compiled = compiled
        self.shape = model_shape(compiled.model)
        #: logprobs are asked for: the run wants them and the provider gives them
        self.confidence = run.confidence and logprobs
        #: renormalise each token over what the grammar allowed (see `after_grammar`): only
        #: sound for greedy decoding, where every better-ranked token must have been refused
        self.renormalise = before_grammar and config.model.temperature == 0
        self.grounding = run.grounding or bool(run.require_grounding)
        self.required = set(run.require_grounding)
        self.keep_ungrounded = run.ungrounded == "flag"
        #: answers that were asked for logprobs and came without usable ones
        self.without_logprobs = 0
        leaves = leaf_paths(self.shape)
        for path in run.require_grounding:
            leaf = leaves.get(path)
            if leaf is None or leaf.kind not in GROUNDABLE_KINDS:
                grounded = sorted(p for p, lf in leaves.items() if lf.kind in GROUNDABLE_KINDS)
                why = (
                    "is not a field"
                    if leaf is None
                    else f"holds {leaf.kind} values, which are not looked for in the text"
                )
                raise ConfigError(
                    f"{config.file}:run.require_grounding: {path!r} {why} of "
                    f"{compiled.model.__name__}; fields that can be grounded: "
                    f"{', '.join(grounded) or '(none)'}"
                )

    def assess(
        self, result: RowResult, completion: Completion | None, texts: Mapping[str, str] | None
    ) -> None:
        """Fill `result`'s trust fields for its validated instance."""
        assert result.instance is not None
        result.confidence = result.margins = result.min_confidence = None
        result.grounding = result.ungrounded = None
        if completion is not None and self.confidence:
            found = None
            tokens = tokens_from_reply(completion.logprobs)
            if tokens is not None and self.renormalise:
                tokens = after_grammar(tokens)
            if tokens is not None and completion.content is not None:
                found = value_confidence(completion.content, tokens, self.shape)
            if found is None:
                self.without_logprobs += 1
            else:
                result.confidence = found.values
                result.margins = found.margins
                result.min_confidence = found.minimum
        if texts is not None and self.grounding:
            wire = self._values(result.instance)
            result.grounding, result.ungrounded = ground(self.shape, wire, texts)

    def _values(self, instance: BaseModel) -> Any:
        """The answer's values keyed as the shape names them (field keys), in JSON form.

        pydantic-core's dump, not the wire encoder: five times cheaper, and what it writes
        differently (a dict as an object, not as key/value pairs) is one `json` leaf to the
        shape either way, never searched for."""
        try:
            return instance.model_dump(mode="json", by_alias=True)
        except (ValueError, TypeError):  # a value pydantic cannot put in JSON form
            return self.compiled.encode(instance)

    def regrounded(self, result: RowResult, texts: Mapping[str, str] | None) -> bool:
        """Ground a cached answer in this row's text (the cache keeps confidence, not where the
        values stand). False when a required value is missing and the row must be requested."""
        assert result.instance is not None
        if texts is not None and self.grounding:
            wire = self._values(result.instance)
            result.grounding, result.ungrounded = ground(self.shape, wire, texts)
        return self.keep_ungrounded or self.required_missing(result, "") is None

    def required_missing(self, result: RowResult, raw: str) -> Ungrounded | None:
        """The values `run.require_grounding` names that were not found, as an error."""
        if not self.required or result.grounding is None or result.instance is None:
            return None
        missing: list[str] = []

        def leaf(_: Any, found: Any, path: str) -> None:
            if (
                isinstance(found, dict)
                and found.get("status") == "none"
                and field_path(path) in self.required
            ):
                missing.append(path)

        mirror(self.shape, result.grounding, leaf)
        if not missing:
            return None
        wire = self._values(result.instance)
        values = [str(value_at(wire, p)) for p in missing]
        listed = "; ".join(f"{p} = {v!r}" for p, v in zip(missing, values, strict=True))
        return Ungrounded(
            f"not found in the input text: {listed[:500]}", raw=raw, paths=missing, values=values
        )
