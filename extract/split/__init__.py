"""Long inputs: a row whose prompt is over the input limit is split into parts, each part is
requested like a row, and the parts' answers are merged into the row's one answer.

`tokens` estimates sizes and finds the limit, `chunk` cuts a text at pages, paragraphs, lines,
sentences, words or characters, `parts` renders a row's parts, `merge` merges answers field by
field, and `combine` joins the parts' results into the row's.
"""

from __future__ import annotations

from .chunk import PAGE_MARKER, Span, split_text
from .combine import combine
from .merge import POLICIES, Merger, Policy
from .parts import Part, Splitter
from .tokens import InputLimit, input_limit, message_units, text_units

__all__ = [
    "PAGE_MARKER",
    "POLICIES",
    "InputLimit",
    "Merger",
    "Part",
    "Policy",
    "Span",
    "Splitter",
    "combine",
    "input_limit",
    "message_units",
    "split_text",
    "text_units",
]
