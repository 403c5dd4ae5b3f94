"""Numbers as text writes them: the number tokens of a text, each with every value it can be
read as, for grounding int, float and decimal values (decimals travel as strings on the wire).

Number tokens are read from the text with the usual conventions: `,` `.` `'` and spaces as
thousands separators (groups of exactly three digits), `,` or `.` as the decimal mark, a sign
directly before (a `-` right after a letter or digit is a hyphen, as in `INV-2024-42`), currency
symbols and units around. An ambiguous token has every reading (`1,500` is 1500 and 1.5). A
token written exactly as the value is `exact`; one with an equal reading is `normalized`. Only
whole tokens count: 42 does not match `142`, `4.2` or `1 042`.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = ["NumberToken", "as_decimal", "as_written", "number_tokens", "numbers_around"]

_SPACES = " \u00a0\u2009\u202f"
_SEPARATORS = ".,'\u2019" + _SPACES
_NUMBER_RUN = re.compile(r"\d+(?:[.,'\u2019 \u00a0\u2009\u202f]\d+)*")
_NUMBER_PART = re.compile(r"\d+(?:[.,'\u2019]\d+)*")
_SEPARATOR = re.compile(r"[.,'\u2019 \u00a0\u2009\u202f]")
_SIGNS = "-\u2212+"  # hyphen-minus, the minus sign, plus

#: a number written in a text: (start, end, every value it can be read as)
NumberToken = tuple[int, int, tuple[Decimal, ...]]


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


def number_tokens(text: str) -> list[NumberToken]:
    """The numbers written in `text`: (start, end, readings), in text order."""
    out: list[NumberToken] = []
    for m in _NUMBER_RUN.finditer(text):
        _add_number(text, m.start(), m.end(), out)
    return out


def _add_number(text: str, a: int, b: int, out: list[NumberToken]) -> None:
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


def numbers_around(text: str, i: int) -> list[NumberToken]:
    """The number tokens of the run of digit groups that holds the digit at `i`: the same tokens
    `number_tokens` gives there, without reading the rest of the text."""
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
    out: list[NumberToken] = []
    if m is not None:
        _add_number(text, m.start(), m.end(), out)
    return out


def as_decimal(value: str | int | float | Decimal) -> Decimal | None:
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


def as_written(value: str | int | float | Decimal) -> str:
    """The value as it would be written verbatim in the text (what an `exact` match looks for)."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Decimal):
        return format(value, "f")
    return repr(value) if isinstance(value, float) else str(value)
