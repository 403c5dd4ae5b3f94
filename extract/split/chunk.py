"""Cut a long text into parts that each fit a token budget, at the coarsest boundary that works.

The text is cut at PDF page markers (lines exactly `--- page N ---`, as the PDF text layer is
rendered) when it has any, else at paragraphs (blank lines); a piece still over the budget is cut
at lines, then sentences, then words, and a single word longer than the budget at characters.
Pieces are packed greedily in order, and a part never mixes a piece it had to cut with its
neighbours: a page that fits stays whole in one part, and a page that does not is cut into
parts of its own.

Every part after the first begins with up to `overlap_chars` characters of the text before it
(moved forward to a word's start), so that a value cut in two at a boundary is whole in one
part; but a part that begins at a page begins at its page marker. A part's text is
`text[start:end]`, so an offset in a part plus `start` is an offset in the whole text; the
parts' new text (`core_start`..`end`) covers the whole text but for the whitespace between
parts, which no part needs to carry.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from .tokens import text_units

__all__ = ["PAGE_MARKER", "Span", "TooManyParts", "split_text"]

#: a page marker of the PDF text layer, on a line of its own
PAGE_MARKER = re.compile(r"^--- page \d+ ---$", re.MULTILINE)

# Where each level may cut: after the separator, so that the pieces tile the text.
_PARAGRAPH = re.compile(r"\n[ \t]*\n\s*")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile(r"(?<=[.!?;:\u3002\uff01\uff1f])\s+")
_WORD = re.compile(r"\s+")


@dataclass(frozen=True)
class Span:
    """One part: `text[start:end]`, of which `text[core_start:end]` is new (the rest repeats
    the end of the part before it)."""

    start: int
    core_start: int
    end: int


class TooManyParts(Exception):
    """More parts than allowed are needed (internal to the split package)."""


def _page_cuts(text: str, lo: int, hi: int) -> list[int]:
    return [m.start() for m in PAGE_MARKER.finditer(text, lo, hi) if m.start() > lo]


def _cuts_after(pattern: re.Pattern[str]) -> Callable[[str, int, int], list[int]]:
    def cuts(text: str, lo: int, hi: int) -> list[int]:
        return [m.end() for m in pattern.finditer(text, lo, hi) if lo < m.end() < hi]

    return cuts


#: the levels, coarsest first; the page level is used only when the text has page markers
_LEVELS: tuple[Callable[[str, int, int], list[int]], ...] = (
    _page_cuts,
    _cuts_after(_PARAGRAPH),
    _cuts_after(_LINE),
    _cuts_after(_SENTENCE),
    _cuts_after(_WORD),
)


class _Packer:
    def __init__(self, text: str, budget: int, max_parts: int):
        self.text = text
        self.budget = budget
        self.max_parts = max_parts
        self.cores: list[tuple[int, int]] = []

    def emit(self, lo: int, hi: int) -> None:
        # a part ends at its last non-space character: whitespace between parts is sent in none
        hi = lo + len(self.text[lo:hi].rstrip())
        if hi == lo:
            return
        if len(self.cores) >= self.max_parts:
            raise TooManyParts
        self.cores.append((lo, hi))

    def pack(self, lo: int, hi: int, level: int) -> None:
        """Pack text[lo:hi] (over the budget) into parts, cutting at `level` or finer."""
        if level == len(_LEVELS):
            self.characters(lo, hi)
            return
        cuts = _LEVELS[level](self.text, lo, hi)
        if not cuts:
            self.pack(lo, hi, level + 1)
            return
        bounds = [lo, *cuts, hi]
        # `units`: the part so far, whole; a piece is measured without its trailing whitespace,
        # which the part drops if the piece ends it
        start, units = lo, 0
        for a, b in itertools.pairwise(bounds):
            piece = self.text[a:b]
            u = text_units(piece.rstrip())
            if u > self.budget:
                self.emit(start, a)
                self.pack(a, b, level + 1)
                start, units = b, 0
                continue
            if units + u > self.budget:
                self.emit(start, a)
                start, units = a, 0
            units += text_units(piece)
        self.emit(start, hi)

    def characters(self, lo: int, hi: int) -> None:
        start, units = lo, 0
        for i in range(lo, hi):
            u = text_units(self.text[i])
            if units + u > self.budget and i > start:
                self.emit(start, i)
                start, units = i, 0
            units += u
        self.emit(start, hi)


def _overlap_start(text: str, core_start: int, floor: int, chars: int, room: int) -> int:
    """Where a part whose new text begins at `core_start` starts: up to `chars` characters (and
    `room` units) earlier, not before `floor`, moved forward to the start of a word."""
    start = core_start
    while start > floor and core_start - start < chars:
        u = text_units(text[start - 1])
        if u > room:
            break
        room -= u
        start -= 1
    if start < core_start and start > 0 and not text[start - 1].isspace():
        # begin at a word's start rather than in the middle of one, if the overlap holds one
        m = _WORD.search(text, start, core_start)
        start = m.end() if m is not None else start
    return start


def split_text(
    text: str, budget: int, *, overlap_chars: int = 0, max_parts: int = 50
) -> list[Span]:
    """Parts of `text`, each of at most `budget` units (extract/split/tokens.py), overlap
    included. Raises TooManyParts when more than `max_parts` are needed."""
    if budget < 1:
        raise ValueError("the budget must be at least one unit")
    if text_units(text) <= budget:
        return [Span(0, 0, len(text))]
    # room kept for the overlap, so that packed parts are not too full to repeat anything; at
    # most half the budget, so that parts still make progress
    reserve = min(overlap_chars, budget // 2)
    packer = _Packer(text, budget - reserve, max_parts)
    pages = PAGE_MARKER.search(text) is not None
    packer.pack(0, len(text), 0 if pages else 1)
    spans = []
    for i, (lo, hi) in enumerate(packer.cores):
        start = lo
        # A part that begins at a page begins at its marker: the end of the page before, with
        # no marker of its own, would read as part of this page.
        at_page = pages and PAGE_MARKER.match(text, lo) is not None
        if i and overlap_chars and not at_page:
            room = budget - text_units(text[lo:hi])
            start = _overlap_start(text, lo, packer.cores[i - 1][0], overlap_chars, room)
        spans.append(Span(start, lo, hi))
    return spans
