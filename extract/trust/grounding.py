"""Grounding: where in the row's input text each extracted value came from, if anywhere.

For every value the model returned, `find_value` looks for it in the row's text columns and says
how it was found, so a user can tell copied values from invented ones. Unlike a citation filter
that silently drops what it cannot find, every value gets a status:

- `exact`: the value occurs verbatim (the earliest occurrence, in the first column that has it);
- `normalized`: it occurs after folding both sides, or, for numbers and dates, the text writes the
  same number or date differently;
- `fuzzy`: a close but not equal string (OCR noise, a typo), strings only;
- `none`: not found; the value may be invented.

`start`/`end` are character offsets (Python `str` indexes, end exclusive) into the original text
of that column, so `texts[column][start:end]` is the matched source text.

How each stage works:

- Folding (strings): Unicode NFKC, casefold, whitespace collapsed, punctuation and symbols
  dropped, with a map back to original offsets: `folding.py`.
- Numbers (int, float, decimal): the text's number tokens, each with every reading under the
  usual separator conventions; only whole tokens count: `numerals.py`.
- Dates and times: ISO, numeric and month-name dates in six languages, clock times, and a
  datetime's time written right after its date: `dates.py`.
- Fuzzy (kind `str` only, values of at least 4 folded non-space characters): rapidfuzz
  `fuzz.partial_ratio_alignment` of the folded value against each folded column, cutoff
  `FUZZY_CUTOFF` = 90; the best score over the columns wins (ties: the earlier column). The
  window it returns has the value's length, so its edges are then moved by up to a tenth of the
  value's length to the span of least Levenshtein distance (ties: word edges), which recovers a
  dropped or doubled letter at an edge, and an edge left that near inside a word goes to the
  word's edge. This search is here (`_find_fuzzy`, `_refine`).

Why 90: partial_ratio is an Indel similarity, where a changed character costs 2 of the
2 x len characters compared, so one changed character scores 100 x (1 - 1/len). 90 lets a value
of 10 characters have one OCR error and one of 20 have two, while short values (4 to 9
characters, names like "Jonsson" against "Johnson") must match after folding. Measured on 20 KB
of invoice-like text, 90 is the knee: it found 298 of 300 phrases carrying one OCR confusion per
12 characters (93 found 252, 95 found 115), while 18 of 296 invented three-word phrases made of
the text's own words matched (85 let 59 through); `fuzzy` tells the user to look. Two rules keep
fuzzy honest where one character changes the meaning: when the value has digits, the match must
have exactly those digits, in order (so `INV-0042` never fuzzily matches `INV-0043`; a value
without digits may meet OCR's 0 for O), and identifiers (email, url, uuid, ip addresses) never
match fuzzily.

Cost: the common case (a value verbatim in the text) is a `str.find` per column. Whatever a
column needs beyond that (its folded text, its number tokens, its dates) is computed once per
row on first use, in a `Texts` built once per row; `ground` builds one from a plain mapping.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from typing import Any, Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

from .dates import (
    Clock,
    DateOccurrence,
    clock_after,
    clock_times,
    date_occurrences,
    parse_temporal,
)
from .folding import Folded, fold, fold_map
from .numerals import NumberToken, as_decimal, as_written, number_tokens, numbers_around
from .shape import Fields, Leaf, Shape, field_path, leaf_paths, mirror

__all__ = [
    "FUZZY_CUTOFF",
    "FUZZY_MIN_CHARS",
    "GROUNDABLE_KINDS",
    "Found",
    "Status",
    "Texts",
    "find_value",
    "fold",
    "ground",
    "groundable_paths",
    "path_matches",
    "ungrounded_paths",
]

Status = Literal["exact", "normalized", "fuzzy", "none"]

#: the lowest rapidfuzz partial_ratio (0-100) that counts as a fuzzy match (see the docstring)
FUZZY_CUTOFF = 90.0
#: folded non-space characters a value needs before it may match fuzzily
FUZZY_MIN_CHARS = 4

NUMBER_KINDS = frozenset({"int", "float", "decimal"})
DATE_KINDS = frozenset({"date", "datetime", "datetime_aware", "datetime_naive"})
#: string kinds searched as text; only `str` may match fuzzily
STRING_KINDS = frozenset({"str", "email", "url", "http_url", "uuid", "ip", "ipv4", "ipv6"})
#: leaf kinds whose values are looked up; enum, bool and json values are not copied text
GROUNDABLE_KINDS = STRING_KINDS | NUMBER_KINDS | DATE_KINDS | {"time"}


@dataclass(frozen=True, slots=True)
class Found:
    """Where a value was found: `texts[column][start:end]` is the source text (end exclusive).

    With status `none`, column, start and end are None."""

    status: Status
    column: str | None = None
    start: int | None = None
    end: int | None = None

    def as_dict(self) -> dict[str, str | int | None]:
        """The slot stored in the `_grounding` column."""
        return {"status": self.status, "column": self.column, "start": self.start, "end": self.end}


NOT_FOUND = Found("none")


#: `fold_map` under its former name here (tests compare it with `fold`)
_fold = fold_map


# --------------------------------------------------------------------------------------------
# the row's texts


class _Column:
    """One input column, with what the searches need, each part computed on first use."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self._dates: dict[int, list[DateOccurrence]] = {}

    @cached_property
    def folded(self) -> Folded:
        return fold_map(self.text)

    @cached_property
    def numbers(self) -> list[NumberToken]:
        return number_tokens(self.text)

    @cached_property
    def numbers_by_text(self) -> dict[str, list[NumberToken]]:
        index: dict[str, list[NumberToken]] = {}
        for token in self.numbers:
            index.setdefault(self.text[token[0] : token[1]], []).append(token)
        return index

    def dates(self, year: int) -> list[DateOccurrence]:
        """The dates of `year` written in the text, in text order."""
        found = self._dates.get(year)
        if found is None:
            found = self._dates[year] = date_occurrences(self.text, year)
        return found

    @cached_property
    def times(self) -> list[tuple[int, int, Clock]]:
        return clock_times(self.text)


class Texts:
    """A row's input texts, searched in column order. Build one per row and pass it to every
    `find_value` of that row, so each column is folded and tokenized at most once.

    Null and empty columns are skipped."""

    __slots__ = ("columns",)

    def __init__(self, texts: Mapping[str, str | None]):
        self.columns = tuple(_Column(k, v) for k, v in texts.items() if isinstance(v, str) and v)

    def __iter__(self) -> Iterator[_Column]:
        return iter(self.columns)


def _texts(texts: Mapping[str, str | None] | Texts) -> Texts:
    return texts if isinstance(texts, Texts) else Texts(texts)


# --------------------------------------------------------------------------------------------
# finding one value


def find_value(
    value: str | int | float | Decimal,
    texts: Mapping[str, str | None] | Texts,
    *,
    kind: str = "str",
) -> Found:
    """Where `value` (an extracted value in wire form) occurs in `texts` (column -> text).

    Columns are searched in order; an exact match anywhere beats a normalized one, which beats a
    fuzzy one (see the module docstring). `kind` is the leaf's Scalar kind: int/float/decimal
    values (numbers, or numeric strings) are matched as numbers, date/datetime/time values (ISO
    strings) as dates, everything else as text. A blank value (empty or whitespace only) has
    nothing to look for and raises ValueError: callers skip it and store null, as `ground` does.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise TypeError(f"cannot ground a {type(value).__name__} value")
    if isinstance(value, str) and not value.strip():
        raise ValueError("a blank value has nothing to ground")
    columns = _texts(texts)
    if not isinstance(value, str) or kind in NUMBER_KINDS:
        number = as_decimal(value)
        if number is not None:
            return _find_number(number, as_written(value), columns)
        if not isinstance(value, str):
            return NOT_FOUND  # NaN or infinity: never written as a number
    if kind in DATE_KINDS or kind == "time":
        moment = parse_temporal(value.strip(), kind)
        if moment is not None:
            return _find_exact(value, columns, whole=True) or _find_temporal(moment, columns)
    return (
        _find_exact(value, columns)
        or _find_folded(value, columns, fuzzy=kind == "str")
        or NOT_FOUND
    )


def _find_exact(value: str, columns: Texts, *, whole: bool = False) -> Found | None:
    """The earliest verbatim occurrence; with `whole`, only one not glued to other digits
    (a date as written inside `2024-03-011` is not that date)."""
    for col in columns:
        text = col.text
        i = text.find(value)
        while i >= 0:
            end = i + len(value)
            if not whole or not (
                (i and text[i - 1].isdecimal()) or (end < len(text) and text[end].isdecimal())
            ):
                return Found("exact", col.name, i, end)
            i = text.find(value, i + 1)
    return None


def _find_folded(value: str, columns: Texts, *, fuzzy: bool) -> Found | None:
    needle = fold(value)
    if not needle:
        return None  # only punctuation or symbols: nothing left to compare
    for col in columns:
        folded = col.folded
        i = folded.text.find(needle)
        if i >= 0:
            return Found("normalized", col.name, *folded.span(i, i + len(needle)))
    if fuzzy and len(needle.replace(" ", "")) >= FUZZY_MIN_CHARS:
        return _find_fuzzy(needle, columns)
    return None


def _find_fuzzy(needle: str, columns: Texts) -> Found | None:
    best: tuple[float, _Column, int, int] | None = None
    # a value without digits may meet some in the text: OCR reads O as 0 and l as 1
    digits = _digits(needle)
    for col in columns:
        haystack = col.folded.text
        if len(haystack) < len(needle):
            continue  # the value cannot be inside a shorter text
        cutoff = FUZZY_CUTOFF if best is None else best[0]
        hit = fuzz.partial_ratio_alignment(needle, haystack, score_cutoff=cutoff)
        if hit is None or (best is not None and hit.score <= best[0]):
            continue
        a, b = _refine(needle, haystack, hit.dest_start, hit.dest_end)
        if digits and digits != _digits(haystack[a:b]):
            continue  # a changed digit is a different number, not noise
        best = (hit.score, col, a, b)
    if best is None:
        return None
    _, col, a, b = best
    return Found("fuzzy", col.name, *col.folded.span(a, b))


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdecimal())


def _refine(needle: str, haystack: str, a: int, b: int) -> tuple[int, int]:
    """The window [a, b) with its edges moved to the span of least edit distance to `needle`.

    partial_ratio's window has the needle's length, so a letter dropped or doubled in the text
    leaves it one off at an edge; Levenshtein (a substitution costs 1, unlike Indel's 2) keeps a
    changed edge letter inside rather than trimming it, and ties go to spans on word edges.
    An edge left a few letters inside a word then moves to the word's edge."""
    reach = 1 + len(needle) // 10
    n = len(haystack)

    def cost(s: int, e: int) -> tuple[int, int, int]:
        on_edges = (s == 0 or haystack[s - 1] == " ") + (e == n or haystack[e] == " ")
        return Levenshtein.distance(needle, haystack[s:e]), -on_edges, abs(s - a) + abs(e - b)

    lo, hi = max(0, a - reach), min(n, b + reach)
    a = min(range(lo, min(a + reach, b - 1) + 1), key=lambda s: cost(s, b))
    b = min(range(max(b - reach, a + 1), hi + 1), key=lambda e: cost(a, e))
    # the folded needle has no edge spaces, but a moved edge may land on one
    while a < b and haystack[a] == " ":
        a += 1
    while a < b and haystack[b - 1] == " ":
        b -= 1
    # an edge a few letters inside a word goes to the word's edge: "blue" against "bleu" is
    # closest as "ble", but the source a reader should see is the word
    start = a
    while start > 0 and haystack[start - 1] != " " and a - start < reach:
        start -= 1
    if start == 0 or haystack[start - 1] == " ":
        a = start
    end = b
    while end < n and haystack[end] != " " and end - b < reach:
        end += 1
    if end == n or haystack[end] == " ":
        b = end
    return a, b


def _find_number(number: Decimal, written: str, columns: Texts) -> Found:
    digits_from = len(written) - len(written.lstrip("+-"))
    for col in columns:
        text = col.text
        i = text.find(written)
        # a number as written is found by str.find and checked where it stands, so the common
        # case never tokenizes the whole text; once the text's tokens are read (or past a few
        # false hits, "1" in every "2024"), looking the text up among them is cheaper
        for _ in range(0 if "numbers" in col.__dict__ else 4):
            if i < 0:
                break
            for a, b, values in numbers_around(text, i + digits_from):
                if (a, b) == (i, i + len(written)) and number in values:
                    return Found("exact", col.name, a, b)
            i = text.find(written, i + 1)
        if i >= 0:
            for a, b, values in col.numbers_by_text.get(written, ()):
                if number in values:
                    return Found("exact", col.name, a, b)
    for col in columns:
        for a, b, values in col.numbers:
            if number in values:
                return Found("normalized", col.name, a, b)
    return NOT_FOUND


def _find_temporal(moment: dt.date | dt.datetime | dt.time, columns: Texts) -> Found:
    if isinstance(moment, dt.time):
        wanted = (moment.hour, moment.minute, moment.second)
        for col in columns:
            for a, b, written_clock in col.times:
                if written_clock == wanted:
                    return Found("normalized", col.name, a, b)
        return NOT_FOUND
    day = moment.date() if isinstance(moment, dt.datetime) else moment
    clock: Clock | None = None
    if isinstance(moment, dt.datetime):
        clock = (moment.hour, moment.minute, moment.second)
    for col in columns:
        for a, b, written in col.dates(day.year):
            if written != day:
                continue
            if clock is None:
                return Found("normalized", col.name, a, b)
            after = clock_after(col.text, b)
            if after is not None and after[0] == clock:
                return Found("normalized", col.name, a, after[1])
            # a date alone stands for its midnight (the model had no time to copy)
            if after is None and clock == (0, 0, 0):
                return Found("normalized", col.name, a, b)
    return NOT_FOUND


# --------------------------------------------------------------------------------------------
# a whole answer


def _groundable(leaf: Leaf, value: Any) -> bool:
    if leaf.kind not in GROUNDABLE_KINDS or value is None or isinstance(value, bool):
        return False
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, int | float)


def ground(
    shape: Fields, wire: Mapping[str, Any], texts: Mapping[str, str | None] | Texts
) -> tuple[dict[str, Any], int]:
    """The `_grounding` mirror of one answer, and how many of its values were not found.

    `wire` is the answer's wire form (`compiled.encode(instance)`). Every leaf of a groundable
    kind (`GROUNDABLE_KINDS`) holding a non-blank value gets `find_value(...).as_dict()`; every
    other leaf (enum, bool, json, null, blank) gets None. The count is of status `none` slots.
    """
    if not isinstance(wire, Mapping):
        raise TypeError(f"an answer's wire form is an object, not {type(wire).__name__}")
    columns = _texts(texts)
    missing = 0

    def slot(leaf: Leaf, value: Any, path: str) -> dict[str, str | int | None] | None:
        nonlocal missing
        if not _groundable(leaf, value):
            return None
        found = find_value(value, columns, kind=leaf.kind)
        missing += found.status == "none"
        return found.as_dict()

    grounding: dict[str, Any] = mirror(shape, dict(wire), slot)
    return grounding, missing


def path_matches(path: str, spec: str) -> bool:
    """Whether a leaf `path` (as `mirror` gives it: `line_items[1].description`) falls under a
    field `spec`: `line_items.description` or `line_items` (without indexes: every item), or
    `line_items[1]` (with indexes: that item only)."""
    target = path if "[" in spec else field_path(path)
    return target == spec or target.startswith((spec + ".", spec + "["))


def ungrounded_paths(
    shape: Shape, grounding: Any, within: Iterable[str] | None = None
) -> list[str]:
    """The paths of the values `ground` did not find, in field order (`line_items[1].name`).

    With `within` (field specs, see `path_matches`), only the paths under one of them: the
    values whose grounding `run.require_grounding` asks for."""
    specs = None if within is None else tuple(within)
    out: list[str] = []

    def visit(leaf: Leaf, slot: Any, path: str) -> None:
        if (
            isinstance(slot, Mapping)
            and slot.get("status") == "none"
            and (specs is None or any(path_matches(path, s) for s in specs))
        ):
            out.append(path)

    mirror(shape, grounding, visit)
    return out


def groundable_paths(shape: Shape) -> list[str]:
    """The field specs (dotted, without indexes) of every groundable leaf, in field order: what
    a `require_grounding` list may name."""
    return [p for p, leaf in leaf_paths(shape).items() if leaf.kind in GROUNDABLE_KINDS]
