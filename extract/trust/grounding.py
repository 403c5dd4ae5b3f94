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

- Folding (strings): Unicode NFKC, casefold, whitespace runs collapsed to one space, punctuation,
  symbols and control characters dropped (letters, digits and their marks kept). The folded text
  keeps a map from each of its characters back to the original characters it came from, so a
  match maps back to offsets that cover the matched original characters and never start or end
  on whitespace or punctuation. Folding works per base character plus its combining marks, and
  the value goes through the same function, so `e` + U+0301 in the text meets a precomposed `é`
  in the value.
- Numbers (int, float, decimal; decimals travel as strings on the wire): number tokens are read
  from the text with the usual conventions: `,` `.` `'` and spaces as thousands separators
  (groups of exactly three digits), `,` or `.` as the decimal mark, a sign directly before
  (a `-` right after a letter or digit is a hyphen, as in `INV-2024-42`), currency symbols and
  units around. An ambiguous token has every reading (`1,500` is 1500 and 1.5). A token written
  exactly as the value is `exact`; one with an equal reading is `normalized`. Only whole tokens
  count: 42 does not match `142`, `4.2` or `1 042`.
- Dates and times (ISO text on the wire): dates in the text in ISO, `01.03.2024` (day first),
  `01/03/2024` and `01-03-2024` (either reading), two-digit years, and with month names in
  English, German, French, Spanish, Italian and Dutch (`1 March 2024`, `March 1, 2024`,
  `1. März 2024`, `1er mars 2024`). A datetime needs its clock time written right after the date
  (`2024-03-01T10:00`, `1 March 2024, 10:00 am`), unless its time is midnight and none is
  written; the UTC offset is not compared. Times: `10:30`, `10:30:15`, `9am`, `10:30 p.m.`,
  `21h15`. As written counts only when not glued to other digits; any other match is
  `normalized`.
- Fuzzy (kind `str` only, values of at least 4 folded non-space characters): rapidfuzz
  `fuzz.partial_ratio_alignment` of the folded value against each folded column, cutoff
  `FUZZY_CUTOFF` = 90; the best score over the columns wins (ties: the earlier column). The
  window it returns has the value's length, so its edges are then moved by up to a tenth of the
  value's length to the span of least Levenshtein distance (ties: word edges), which recovers a
  dropped or doubled letter at an edge, and an edge left that near inside a word goes to the
  word's edge.

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
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cached_property, lru_cache
from typing import Any, Literal

from rapidfuzz import fuzz
from rapidfuzz.distance import Levenshtein

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
STRING_KINDS = frozenset({"str", "email", "url", "uuid", "ipv4", "ipv6"})
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


# --------------------------------------------------------------------------------------------
# folding with an index map


@dataclass(frozen=True, slots=True)
class _Folded:
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
    """Builds a `_Folded`: ASCII phrase runs in `fold`, everything else cluster by cluster in
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

    def fold(self) -> _Folded:
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
        return _Folded("".join(self.parts), self.at, self.origin, self.ends)


def _fold(text: str) -> _Folded:
    """`text` folded (see the module docstring), with the map back to original offsets."""
    return _Folder(text).fold()


_ASCII_DROPPED = re.compile(r"[^0-9A-Za-z\s]+")
_ASCII_SPACES = re.compile(r"\s+")


def fold(text: str) -> str:
    """`text` as the normalized stage compares it (NFKC, casefold, spaces, no punctuation)."""
    if text.isascii():
        # what _fold gives, by two substitutions instead of building a map: every value is
        # folded, and most are short ASCII strings
        return _ASCII_SPACES.sub(" ", _ASCII_DROPPED.sub("", text)).strip().lower()
    return _fold(text).text


# --------------------------------------------------------------------------------------------
# numbers

_SPACES = " \u00a0\u2009\u202f"
_SEPARATORS = ".,'\u2019" + _SPACES
_NUMBER_RUN = re.compile(r"\d+(?:[.,'\u2019 \u00a0\u2009\u202f]\d+)*")
_NUMBER_PART = re.compile(r"\d+(?:[.,'\u2019]\d+)*")
_SEPARATOR = re.compile(r"[.,'\u2019 \u00a0\u2009\u202f]")
_SIGNS = "-\u2212+"  # hyphen-minus, the minus sign, plus

_NumberToken = tuple[int, int, tuple[Decimal, ...]]


def _thousands(head: str, groups: list[str]) -> bool:
    """Whether `head` then `groups` are a thousands grouping (1-3 digits, then threes)."""
    return 1 <= len(head) <= 3 and int(head[0]) != 0 and all(len(g) == 3 for g in groups)


def _readings(raw: str) -> tuple[Decimal, ...]:
    """Every value a run of digit groups can be read as (none when no convention fits)."""
    if raw.isdecimal():
        return (Decimal(raw),)
    seps = [c for c in raw if c in _SEPARATORS]
    groups = _SEPARATOR.split(raw)
    out: list[Decimal] = []
    if len(set(seps)) == 1 and _thousands(groups[0], groups[1:]):
        out.append(Decimal("".join(groups)))
    point, lead = seps[-1], seps[:-1]
    if point in ".," and (
        not lead
        or (len(set(lead)) == 1 and lead[0] != point and _thousands(groups[0], groups[1:-1]))
    ):
        out.append(Decimal("".join(groups[:-1]) + "." + groups[-1]))
    return tuple(out)


def _number_tokens(text: str) -> list[_NumberToken]:
    """The numbers written in `text`: (start, end, readings), in text order."""
    out: list[_NumberToken] = []
    for m in _NUMBER_RUN.finditer(text):
        _add_number(text, m.start(), m.end(), out)
    return out


def _add_number(text: str, a: int, b: int, out: list[_NumberToken]) -> None:
    raw = text[a:b]
    values = _readings(raw)
    if not values:
        if any(c in _SPACES for c in raw):
            # the spaces were not thousands separators, so each part is a number of its own
            for m in _NUMBER_PART.finditer(text, a, b):
                _add_number(text, m.start(), m.end(), out)
        return
    start = a
    before = text[a - 1] if a else " "
    if before.isspace() or before.isalnum():
        pass  # the usual case: no sign, no leading point
    elif before in ".,":
        if raw.isdecimal() and (a < 2 or not text[a - 2].isdecimal()):
            # ".5" is a half, but "Nr.5" is five: keep both readings
            values = (*values, Decimal("0." + raw))
    else:
        sign = a - 1
        if before not in _SIGNS and sign >= 1 and unicodedata.category(before) == "Sc":
            sign -= 1  # "-$42"
        # a sign only after a space or a bracket: "INV-42" holds 42, "ISO-9001" 9001
        if text[sign] in _SIGNS and (sign == 0 or not text[sign - 1].isalnum()):
            if text[sign] != "+":
                values = tuple(-v for v in values)
            start = sign
    out.append((start, b, values))


def _numbers_around(text: str, i: int) -> list[_NumberToken]:
    """The number tokens of the run of digit groups that holds the digit at `i`: the same tokens
    `_number_tokens` gives there, without reading the rest of the text."""
    if i >= len(text) or not text[i].isdecimal():
        return []
    # back to where `_NUMBER_RUN` would have started: over digits, and over a separator that
    # has a digit on both sides
    while i > 0 and (
        text[i - 1].isdecimal()
        or (i >= 2 and text[i - 1] in _SEPARATORS and text[i - 2].isdecimal())
    ):
        i -= 1
    m = _NUMBER_RUN.match(text, i)
    out: list[_NumberToken] = []
    if m is not None:
        _add_number(text, m.start(), m.end(), out)
    return out


def _as_decimal(value: str | int | float | Decimal) -> Decimal | None:
    """The value as a finite Decimal, or None (a float through its repr: 0.1 is 0.1)."""
    try:
        number = (
            value
            if isinstance(value, Decimal)
            else Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        )
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _written(value: str | int | float | Decimal) -> str:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value) if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------------------------
# dates and times

_MONTH_NAMES = (
    "january jan januar jänner janvier janv enero gennaio januari",
    "february feb februar février fevrier févr febrero febbraio februari",
    "march mar märz maerz mär mrz mars marzo maart",
    "april apr avril avr abril aprile",
    "may mai mayo maggio mei",
    "june jun juni juin junio giugno",
    "july jul juli juillet juil julio luglio",
    "august aug août aout agosto augustus",
    "september sep sept septembre septiembre settembre",
    "october oct oktober okt octobre octubre ottobre",
    "november nov novembre noviembre",
    "december dec dezember dez décembre decembre déc diciembre dicembre",
)
_MONTHS = {name: i for i, names in enumerate(_MONTH_NAMES, 1) for name in names.split()}
# a word that may be a month name, looked up in _MONTHS after the match: one character class is
# far cheaper for the regex engine than trying eighty names at every position
_WORD = r"(?<![^\W\d_])([^\W\d_]{3,10})(?![^\W\d_])"
_DAY_SUFFIX = r"(?:st|nd|rd|th|er|\.)?"
_DATE_PATTERNS = (
    # 2024-03-01, 2024/03/01, 2024.03.01
    ("ymd", re.compile(r"(?<!\d)(\d{4})([-/.])(\d{1,2})\2(\d{1,2})(?!\d)")),
    # 01.03.2024 (day first), 01/03/2024 and 01-03-24 (either way round)
    ("dmy", re.compile(r"(?<!\d)(\d{1,2})([-/.])(\d{1,2})\2(\d{4}|\d{2})(?!\d)")),
    # 1 March 2024, 1. März 2024, 1er mars 2024, 1 de marzo de 2024, 01-Mar-2024
    (
        "d_month_y",
        re.compile(
            rf"(?<!\d)(\d{{1,2}}){_DAY_SUFFIX}\s*(?:of\s+|de\s+)?[-/]?\s*{_WORD}\.?"
            r"(?:\s+de\s+|[\s,/-])*(\d{4})(?!\d)",
            re.IGNORECASE,
        ),
    ),
    # March 1, 2024; Mar 1 2024; March 1st, 2024
    (
        "month_d_y",
        re.compile(
            rf"{_WORD}\.?\s*(\d{{1,2}}){_DAY_SUFFIX}(?!\d)\s*,?\s*(\d{{4}})(?!\d)",
            re.IGNORECASE,
        ),
    ),
)
_CLOCK = (
    r"(?<![\d:])(\d{1,2})(?:[:h](\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
    r"(?:\s*([ap])\.?\s?m\b\.?)?(?![\d:])"
)
_TIME = re.compile(_CLOCK, re.IGNORECASE)
# what may stand between a date and its time: "T", a comma, spaces, a word for "at"
_TIME_AFTER_DATE = re.compile(
    r"(?:T|[\s,]*(?:(?:at|um|à|a las|alle|om)\s+)?)" + _CLOCK, re.IGNORECASE
)

_DateOccurrence = tuple[int, int, dt.date]
_Clock = tuple[int, int, int]


def _year(digits: str) -> int:
    year = int(digits)
    # two-digit years pivot as strptime's %y does
    if len(digits) == 2:
        return 2000 + year if year < 69 else 1900 + year
    return year


def _date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _date_windows(text: str, year: int) -> Iterator[tuple[int, int]]:
    """Spans of `text` around each place the year's last two digits occur, merged.

    Every date pattern holds its year, so only these windows can hold the date: scanning them
    instead of the whole text keeps a 20 KB text at a few string searches. A window reaches
    far enough before (day, month name, "de") and after (month and day after the year) to hold
    a whole date, and a little more, so the patterns' look-arounds see real text."""
    short = f"{year % 100:02d}"
    reach = 48
    lo = hi = -1
    i = text.find(short)
    while i >= 0:
        a, b = max(0, i - reach), min(len(text), i + len(short) + 8)
        if a > hi >= 0:
            yield lo, hi
            lo = -1
        if lo < 0:
            lo = a
        hi = b
        i = text.find(short, i + 1)
    if lo >= 0:
        yield lo, hi


def _date_occurrences(text: str, year: int) -> list[_DateOccurrence]:
    """The dates of `year` written in `text` in a known format (each reading of an ambiguous
    one), in text order."""
    out: list[_DateOccurrence] = []
    for lo, hi in _date_windows(text, year):
        for form, pattern in _DATE_PATTERNS:
            m = pattern.search(text, lo, hi)
            while m is not None:
                readings = _date_readings(form, m.groups())
                for y, mo, d in readings:
                    if y == year and (day := _date(y, mo, d)) is not None:
                        out.append((m.start(), m.end(), day))
                # a word that is no month may hide a date starting inside the match
                m = pattern.search(text, m.end() if readings else m.start() + 1, hi)
    out.sort(key=lambda o: o[0])
    return out


def _date_readings(form: str, g: tuple[str, ...]) -> list[tuple[int, int, int]]:
    """The (year, month, day) readings of a `_DATE_PATTERNS` match; none if its word is no
    month name."""
    if form == "ymd":
        return [(int(g[0]), int(g[2]), int(g[3]))]
    if form == "dmy":
        y = _year(g[3])
        # dots are day first; slashes and dashes are either, as Europe and the US write them
        return [(y, int(g[2]), int(g[0]))] + ([(y, int(g[0]), int(g[2]))] if g[1] != "." else [])
    day, word, year = (g[0], g[1], g[2]) if form == "d_month_y" else (g[1], g[0], g[2])
    month = _MONTHS.get(word.casefold())
    return [] if month is None else [(int(year), month, int(day))]


def _clock(m: re.Match[str]) -> _Clock | None:
    """The (hour, minute, second) of a `_CLOCK` match; None for a bare number or a bad time."""
    hour_s, minute_s, second_s, half = m.group(1, 2, 3, 4)
    if minute_s is None and half is None:
        return None
    hour, minute, second = int(hour_s), int(minute_s or 0), int(second_s or 0)
    if half is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    return hour, minute, second


def _parse_temporal(value: str, kind: str) -> dt.date | dt.datetime | dt.time | None:
    try:
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "time":
            return dt.time.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------
# the row's texts


class _Column:
    """One input column, with what the searches need, each part computed on first use."""

    def __init__(self, name: str, text: str):
        self.name = name
        self.text = text
        self._dates: dict[int, list[_DateOccurrence]] = {}

    @cached_property
    def folded(self) -> _Folded:
        return _fold(self.text)

    @cached_property
    def numbers(self) -> list[_NumberToken]:
        return _number_tokens(self.text)

    @cached_property
    def numbers_by_text(self) -> dict[str, list[_NumberToken]]:
        index: dict[str, list[_NumberToken]] = {}
        for token in self.numbers:
            index.setdefault(self.text[token[0] : token[1]], []).append(token)
        return index

    def dates(self, year: int) -> list[_DateOccurrence]:
        """The dates of `year` written in the text, in text order."""
        found = self._dates.get(year)
        if found is None:
            found = self._dates[year] = _date_occurrences(self.text, year)
        return found

    @cached_property
    def times(self) -> list[tuple[int, int, _Clock]]:
        found = ((m.start(), m.end(), _clock(m)) for m in _TIME.finditer(self.text))
        return [(a, b, c) for a, b, c in found if c is not None]


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
        number = _as_decimal(value)
        if number is not None:
            return _find_number(number, _written(value), columns)
        if not isinstance(value, str):
            return NOT_FOUND  # NaN or infinity: never written as a number
    if kind in DATE_KINDS or kind == "time":
        moment = _parse_temporal(value.strip(), kind)
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
            for a, b, values in _numbers_around(text, i + digits_from):
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
    clock: _Clock | None = None
    if isinstance(moment, dt.datetime):
        clock = (moment.hour, moment.minute, moment.second)
    for col in columns:
        for a, b, written in col.dates(day.year):
            if written != day:
                continue
            if clock is None:
                return Found("normalized", col.name, a, b)
            m = _TIME_AFTER_DATE.match(col.text, b)
            after = None if m is None else _clock(m)
            if after == clock and m is not None:
                return Found("normalized", col.name, a, m.end())
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
