"""A row whose prompt is over the input limit, turned into parts: the same template rendered
with the split column replaced by each piece of its text (extract/split/chunk.py).

Each part is requested like a row of its own; their answers are merged (combine.py). A row that
cannot be split small enough is an `InputTooLong` error of that row.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from ..config import PipelineConfig
from ..errors import ConfigError, InputTooLong
from ..prompt import Message, Prompt, Rendered, fingerprint
from ..results import RowResult
from .chunk import TooManyParts, split_text
from .merge import Merger
from .tokens import InputLimit, message_units, tokens

__all__ = ["Part", "Splitter"]


@dataclass(slots=True)
class Part:
    """One part of a split row: `text[start:end]` of the split column (`column`), rendered."""

    index: int
    column: str
    start: int
    end: int
    messages: list[Message]
    prompt_hash: str
    request_hash: str
    chars: int
    #: the row's texts with the split column replaced by this part (None: grounding is off)
    texts: dict[str, str] | None
    #: this part's answer from the response cache (set by the row loop's look-up)
    cached: RowResult | None = None


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class Splitter:
    """Splits the rows of one pipeline whose prompt is over `limit`."""

    def __init__(self, config: PipelineConfig, prompt: Prompt, limit: InputLimit, merger: Merger):
        self.prompt = prompt
        self.limit = limit
        self.merger = merger
        self.column = config.split.column
        self.overlap_chars = config.split.overlap_chars
        self.max_parts = config.split.max_parts
        check_column(config, prompt)

    def _uses(self, column: str) -> int:
        """How many times the templates put `column` in the messages."""
        templates = (self.prompt.system, self.prompt.user)
        return sum(t.fields.count(column) for t in templates if t is not None)

    def parts(
        self,
        rendered: Rendered,
        key: Any,
        template_digest: bytes,
        texts: dict[str, str] | None,
    ) -> list[Part] | None:
        """The row's parts, or None when its messages fit the limit. Raises InputTooLong.

        A part is the row as the templates saw it (`rendered.view`: a document column holds
        its text, page markers included) with the split column replaced by a piece of it."""
        row, urls = rendered.view, rendered.urls
        units = message_units(rendered.messages)
        limit = self.limit
        if units <= limit.units:
            return None
        over = (
            f"the prompt is about {tokens(units)} tokens, over the limit of {limit.tokens} "
            f"({limit.source})"
        )
        column = self.column or max(
            self.prompt.text_columns, key=lambda c: len(_text(row.get(c))), default=None
        )
        if column is None:
            raise InputTooLong(
                f"{over}, and the prompt names no column to split",
                row_key=key,
                tokens=tokens(units),
                limit=limit.tokens,
            )
        text = _text(row.get(column))
        base = message_units(self.prompt.compose({**row, column: ""}, urls))
        budget = (limit.units - base) // self._uses(column)
        if budget < 1:
            raise InputTooLong(
                f"{over}; without column {column!r} it is still about {tokens(base)} tokens, "
                "which leaves no room for that column's text",
                row_key=key,
                tokens=tokens(units),
                limit=limit.tokens,
            )
        try:
            spans = split_text(
                text, budget, overlap_chars=self.overlap_chars, max_parts=self.max_parts
            )
        except TooManyParts:
            raise InputTooLong(
                f"{over}; column {column!r} would need more than split.max_parts "
                f"({self.max_parts}) parts of about {tokens(budget)} tokens",
                row_key=key,
                tokens=tokens(units),
                limit=limit.tokens,
            ) from None
        parts = []
        for i, span in enumerate(spans, 1):
            piece = text[span.start : span.end]
            part_messages = self.prompt.compose({**row, column: piece}, urls)
            if message_units(part_messages) > limit.units:
                # only a budget smaller than one character can get here
                raise InputTooLong(
                    f"{over}; column {column!r} cannot be cut into parts that fit",
                    row_key=key,
                    tokens=tokens(units),
                    limit=limit.tokens,
                )
            prompt_hash, request_hash, chars = fingerprint(
                part_messages, template_digest, rendered.inputs
            )
            part_texts = None if texts is None else {**texts, column: piece}
            parts.append(
                Part(
                    i, column, span.start, span.end, part_messages, prompt_hash, request_hash,
                    chars, part_texts,
                )
            )  # fmt: skip
        return parts

    def request_hash(self, parts: list[Part]) -> str:
        """A split row's cache key: its parts' requests and the merge that joins them."""
        h = hashlib.sha256(b"split\n")
        h.update(self.merger.policies_digest().encode())
        for part in parts:
            h.update(f"\n{part.column}:{part.start}:{part.end}:{part.request_hash}".encode())
        return h.hexdigest()[:32]


def check_column(config: PipelineConfig, prompt: Prompt) -> None:
    """`split.column`, when set, must be a column the prompt's templates name."""
    column = config.split.column
    if column is not None and column not in prompt.text_columns:
        raise ConfigError(
            f"{config.file}:split.column: {column!r} is not a column the prompt names; it names: "
            f"{', '.join(prompt.text_columns) or '(none)'}",
            path=str(config.file),
        )
