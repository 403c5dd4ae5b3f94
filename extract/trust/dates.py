"""Dates and times as text writes them, for grounding date, datetime and time values (ISO text
on the wire): the dates of a given year written in a text, and the clock times.

Dates are read in ISO, `01.03.2024` (day first), `01/03/2024` and `01-03-2024` (either
reading), two-digit years, and with month names in English, German, French, Spanish, Italian and
Dutch (`1 March 2024`, `March 1, 2024`, `1. März 2024`, `1er mars 2024`). A datetime needs its
clock time written right after the date (`2024-03-01T10:00`, `1 March 2024, 10:00 am`: see
`clock_after`), unless its time is midnight and none is written; the UTC offset is not compared.
Times: `10:30`, `10:30:15`, `9am`, `10:30 p.m.`, `21h15`. As written counts only when not glued
to other digits; any other match is `normalized`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

__all__ = [
    "Clock",
    "DateOccurrence",
    "clock_after",
    "clock_times",
    "date_occurrences",
    "parse_temporal",
]

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

#: a date written in a text: (start, end, the date)
DateOccurrence = tuple[int, int, dt.date]
#: a clock time: (hour, minute, second)
Clock = tuple[int, int, int]


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


def date_occurrences(text: str, year: int) -> list[DateOccurrence]:
    """The dates of `year` written in `text` in a known format (each reading of an ambiguous
    one), in text order."""
    out: list[DateOccurrence] = []
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


def _clock(m: re.Match[str]) -> Clock | None:
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


def clock_times(text: str) -> list[tuple[int, int, Clock]]:
    """The clock times written in `text`: (start, end, clock), in text order."""
    found = ((m.start(), m.end(), _clock(m)) for m in _TIME.finditer(text))
    return [(a, b, c) for a, b, c in found if c is not None]


def clock_after(text: str, i: int) -> tuple[Clock, int] | None:
    """The clock time written right after a date ending at `i` ("T", a comma, "at" between),
    and where it ends; None when there is none."""
    m = _TIME_AFTER_DATE.match(text, i)
    if m is None:
        return None
    clock = _clock(m)
    return None if clock is None else (clock, m.end())


def parse_temporal(value: str, kind: str) -> dt.date | dt.datetime | dt.time | None:
    """An ISO wire value of leaf kind `kind` (date, time, a datetime kind); None if it is not."""
    try:
        if kind == "date":
            return dt.date.fromisoformat(value)
        if kind == "time":
            return dt.time.fromisoformat(value)
        return dt.datetime.fromisoformat(value)
    except ValueError:
        return None
