"""Formatting for the report page: HTML escaping and the spelling of numbers, money, shares and
times. What `e`, `num`, `money`, `pct`, `ratio`, `when` and `seconds` return is safe to put in
HTML as it is; `cut` shortens raw text, which is escaped after."""

from __future__ import annotations

import datetime as dt
from html import escape

__all__ = ["DASH", "cut", "e", "money", "num", "pct", "ratio", "seconds", "when"]

#: what a cell shows when there is no value
DASH = "&mdash;"


def e(value: object) -> str:
    """Text made safe for HTML content and attribute values."""
    return escape(str(value), quote=True)


def num(value: int | None) -> str:
    """A count with thousands separators."""
    return DASH if value is None else f"{value:,}"


def money(value: float | None) -> str:
    """US dollars: four decimals for the cents a small run costs, two from $100."""
    if value is None:
        return DASH
    return f"${value:,.2f}" if value >= 100 else f"${value:,.4f}"


def pct(share: float | None) -> str:
    """A share of 1 as a percentage with one decimal."""
    return DASH if share is None else f"{share * 100:.1f}%"


def ratio(value: float | None) -> str:
    """A precision, recall or F1 with three decimals."""
    return DASH if value is None else f"{value:.3f}"


def when(value: dt.datetime | None) -> str:
    """A time to the second, with its zone."""
    if value is None:
        return DASH
    return e(value.strftime("%Y-%m-%d %H:%M:%S %Z").strip())


def seconds(value: float | None) -> str:
    """A duration: seconds up to two minutes, then minutes, then hours."""
    if value is None:
        return ""
    if value < 120:
        return f"{value:.1f} s"
    minutes, secs = divmod(round(value), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m {secs:02d}s"


def cut(text: str, limit: int) -> str:
    """`text` shortened to `limit` characters (not escaped)."""
    return text if len(text) <= limit else text[:limit] + "\u2026"
