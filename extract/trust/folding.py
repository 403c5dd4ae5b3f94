"""Unicode folding for the `normalized` and `fuzzy` stages of grounding, with a map from the
folded text back to the original, so a match in folded text becomes offsets into the original.

Folding: Unicode NFKC, casefold, whitespace runs collapsed to one space, punctuation, symbols and
control characters dropped (letters, digits and their marks kept). The folded text keeps a map
from each of its characters back to the original characters it came from, so a match maps back
to offsets that cover the matched original characters and never start or end on whitespace or
punctuation. Folding works per base character plus its combining marks, and the value goes
through the same function, so `e` + U+0301 in the text meets a precomposed `é` in the value.

`fold` gives the folded string alone (values: most are short ASCII, folded by two regex
substitutions); `fold_map` gives it with the map (`Folded`), once per text column.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Folded", "fold", "fold_map"]


@dataclass(frozen=True, slots=True)
class Folded:
    """A folded text and the map back to the original, by segments rather than per character
    (a 20 KB text is some hundred segments, not 40,000 ints).

    Segment j starts at folded offset `at[j]`. With `ends[j]` = -1 it is a run copied one to one
    from original offset `origin[j]`; otherwise it is what one original cluster
    `origin[j]:ends[j]` folded to (a ligature, a letter and its marks, a collapsed space)."""

    text: str
    at: list[int]
    origin: list[int]
    ends: list[int]

    def _char(self, i: int) -> tuple[int, int]:
        j = bisect_right(self.at, i) - 1
        if self.ends[j] < 0:
            start = self.origin[j] + i - self.at[j]
            return start, start + 1
        return self.origin[j], self.ends[j]

    def span(self, a: int, b: int) -> tuple[int, int]:
        """The original span of folded characters a:b (b > a)."""
        return self._char(a)[0], self._char(b - 1)[1]


# ASCII words joined by single spaces fold by lower() alone, one regex match for a whole phrase.
# A last letter followed by a non-ASCII character is left out: that may be a combining mark
# belonging to it, so it goes to the per-character path with its marks.
_FAST_RUN = re.compile(r"(?:[0-9A-Za-z]+ )*[0-9A-Za-z]+(?![^\x00-\x7f])")
_ASCII_SPACE = re.compile(r"\s")


@lru_cache(maxsize=8192)
def _fold_piece(piece: str) -> str:
    """One base character and its combining marks, folded: "" when it is dropped."""
    if piece.isspace():
        return " "
    # NFKC again after casefold: casefolding can leave text that is not NFKC (Unicode's
    # NFKC_Casefold does the same)
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", piece).casefold())
    out: list[str] = []
    kept_base = False
    for ch in folded:
        major = unicodedata.category(ch)[0]
        if major in "LN":
            out.append(ch)
            kept_base = True
        elif major == "M":
            # a mark only with a kept letter: an emoji's variation selector is a mark too
            if kept_base:
                out.append(ch)
        else:
            kept_base = False
            if ch.isspace():
                out.append(" ")
    return "".join(out)


class _Folder:
    """Builds a `Folded`: ASCII phrase runs in `fold`, everything else cluster by cluster in
    `gap`. Whitespace is emitted lazily (`pending`), so runs collapse to one space and none
    leads or trails."""

    __slots__ = ("at", "ends", "origin", "parts", "pending", "size", "text")

    def __init__(self, text: str):
        self.text = text
        self.parts: list[str] = []
        self.at: list[int] = []
        self.origin: list[int] = []
        self.ends: list[int] = []
        self.size = 0
        # offset of a whitespace character the next emitted text must be preceded by, or -1
        self.pending = -1

    def emit(self, folded: str, start: int, end: int) -> None:
        """Append `folded`, from original `start:end` (end -1: copied one to one from start)."""
        if self.pending >= 0:
            if self.size:
                self.parts.append(" ")
                self.at.append(self.size)
                self.origin.append(self.pending)
                self.ends.append(self.pending + 1)
                self.size += 1
            self.pending = -1
        self.parts.append(folded)
        self.at.append(self.size)
        self.origin.append(start)
        self.ends.append(end)
        self.size += len(folded)

    def gap(self, a: int, b: int) -> None:
        """Fold text[a:b], which holds no ASCII phrase run and some non-ASCII character."""
        text = self.text
        i = a
        while i < b:
            j = i + 1
            while j < b and unicodedata.category(text[j])[0] == "M":
                j += 1
            folded = _fold_piece(text[i:j])
            if folded == " ":
                if self.pending < 0:
                    self.pending = i
            elif " " not in folded:
                if folded:
                    self.emit(folded, i, j)
            else:  # NFKC may expand to spaced text: "\u2474" is "(1)", "\u33a1" "m2"
                for ch in folded:
                    if ch != " ":
                        self.emit(ch, i, j)
                    elif self.pending < 0:
                        self.pending = i
            i = j

    def fold(self) -> Folded:
        text = self.text
        ascii_only = text.isascii()
        pos = 0
        for m in _FAST_RUN.finditer(text):
            a, b = m.span()
            if a > pos:
                if ascii_only or text[pos:a].isascii():
                    # only punctuation, symbols and whitespace: letters and digits are in runs
                    if self.pending < 0 and (space := _ASCII_SPACE.search(text, pos, a)):
                        self.pending = space.start()
                else:
                    self.gap(pos, a)
            self.emit(m.group().lower(), a, -1)
            pos = b
        if pos < len(text) and not (ascii_only or text[pos:].isascii()):
            self.gap(pos, len(text))
        return Folded("".join(self.parts), self.at, self.origin, self.ends)


def fold_map(text: str) -> Folded:
    """`text` folded (see the module docstring), with the map back to original offsets."""
    return _Folder(text).fold()


_ASCII_DROPPED = re.compile(r"[^0-9A-Za-z\s]+")
_ASCII_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """`text` as the normalized stage compares it (NFKC, casefold, spaces, no punctuation)."""
    if text.isascii():
        # what fold_map gives, by two substitutions instead of building a map: every value is
        # folded, and most are short ASCII strings
        return _ASCII_SPACES.sub(" ", _ASCII_DROPPED.sub("", text)).strip().lower()
    return fold_map(text).text
