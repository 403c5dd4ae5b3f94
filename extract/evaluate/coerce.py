"""Values as their field's Python type, whichever way they arrived.

A labels CSV gives text (`"12.50"`, `"true"`, `"[\"a\"]"`), JSONL numbers and objects, Parquet
and DuckDB typed values, the output table Decimals, dates and STRUCTs. `coerce(shape, value)`
turns each into the field's type (Decimal for every number, date/datetime/time, the enum's
value, bool, dict, list), so the match modes compare like with like.
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import json
import unicodedata
from typing import Any

from ..schema.columns import generic_jsonable
from ..trust.shape import Items, Leaf, Shape

__all__ = [
    "DATE_KINDS",
    "NUMBER_KINDS",
    "TEXT_KINDS",
    "as_text",
    "coerce",
    "normalize_text",
    "plain",
    "short",
    "to_decimal",
    "to_temporal",
]

TEXT_KINDS = frozenset({"str", "email", "url", "ipv4", "ipv6", "uuid"})
NUMBER_KINDS = frozenset({"int", "float", "decimal"})
DATE_KINDS = frozenset({"date", "datetime", "datetime_naive", "datetime_aware", "time"})
_TRUE = frozenset({"true", "t", "yes", "y", "1"})
_FALSE = frozenset({"false", "f", "no", "n", "0"})


def _parse_json(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError as e:
            raise ValueError(f"{short(value)} is not JSON") from e
    return value


def short(value: Any, limit: int = 40) -> str:
    """A value's repr, cut for an error message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def to_decimal(value: Any) -> decimal.Decimal:
    """A number (or its text) as a finite Decimal; ValueError for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float | decimal.Decimal | str):
        raise ValueError(f"{short(value)} is not a number")
    try:
        number = decimal.Decimal(value.strip() if isinstance(value, str) else str(value))
    except decimal.InvalidOperation as e:
        raise ValueError(f"{short(value)} is not a number") from e
    if not number.is_finite():
        raise ValueError(f"{short(value)} is not a finite number")
    return number


def to_temporal(value: Any, kind: str = "") -> dt.date | dt.datetime | dt.time:
    """A date, datetime or time (or its ISO text) as such; ValueError for anything else.

    With a `kind` the value becomes that kind: a datetime for a `date` field is cut to its date,
    and aware datetimes of a plain `datetime` field become naive UTC, as the table stores them.
    """
    if isinstance(value, str):
        text = value.strip()
        parsed: dt.date | dt.datetime | dt.time
        try:
            if kind == "time":
                parsed = dt.time.fromisoformat(text)
            elif len(text) == 10 or kind == "date":
                parsed = dt.date.fromisoformat(text[:10])
            else:
                parsed = dt.datetime.fromisoformat(text)
        except ValueError as e:
            raise ValueError(f"{short(value)} is not an ISO date") from e
        value = parsed
    if not isinstance(value, dt.date | dt.time):
        raise ValueError(f"{short(value)} is not a date")
    moment: dt.date | dt.datetime | dt.time = value
    if kind == "date" and isinstance(moment, dt.datetime):
        return moment.date()
    if kind in ("datetime", "datetime_naive", "datetime_aware"):
        if isinstance(moment, dt.time):
            raise ValueError(f"{short(value)} is a time, not a datetime")
        if not isinstance(moment, dt.datetime):
            moment = dt.datetime.combine(moment, dt.time())
        if kind == "datetime_aware" and moment.tzinfo is None:
            return moment.replace(tzinfo=dt.UTC)
        if kind != "datetime_aware" and moment.tzinfo is not None:
            return moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment


def _coerce_leaf(leaf: Leaf, value: Any) -> Any:
    kind = leaf.kind
    if isinstance(value, enum.Enum):
        value = value.value
    if kind in TEXT_KINDS:
        if isinstance(value, dict | list):
            raise ValueError(f"{short(value)} is not text")
        return value if isinstance(value, str) else as_text(value)
    if kind in NUMBER_KINDS:
        return to_decimal(value)
    if kind in DATE_KINDS:
        return to_temporal(value, kind)
    if kind == "bool" or (leaf.choices and all(isinstance(c, bool) for c in leaf.choices)):
        return _to_bool(value)
    if kind == "enum":
        for choice in leaf.choices:
            if value == choice or str(value) == str(choice):
                return choice
        shown = ", ".join(str(c) for c in leaf.choices)
        raise ValueError(f"{short(value)} is not one of {shown}")
    if kind == "null":
        return None
    return _parse_json(value)  # json leaves: dicts, unions, tuples, recursive models


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise ValueError(f"{short(value)} is not a boolean")


def coerce(shape: Shape, value: Any) -> Any:
    """`value` as the Python type of `shape`'s field; ValueError naming what does not fit.

    Lists and objects may come as JSON text (a labels CSV holds them so).
    """
    if value is None:
        return None
    if isinstance(shape, Leaf):
        return _coerce_leaf(shape, value)
    value = _parse_json(value)
    if isinstance(shape, Items):
        if not isinstance(value, list | tuple):
            raise ValueError(f"{short(value)} is not a list")
        return [coerce(shape.item, v) for v in value]
    if not isinstance(value, dict):
        raise ValueError(f"{short(value)} is not an object")
    keys = {k for k, _ in shape.fields}
    unknown = sorted(set(value) - keys)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} (keys are: {', '.join(sorted(keys))})")
    return {k: coerce(sub, value.get(k)) for k, sub in shape.fields}


def as_text(value: Any) -> str:
    """A value as text to compare: numbers without trailing zeros, dates in ISO form."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, decimal.Decimal):
        return _number_text(value)
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, int | float):
        return _number_text(decimal.Decimal(str(value)))
    return json.dumps(generic_jsonable(value), sort_keys=True, ensure_ascii=False)


def plain(value: Any) -> Any:
    """JSON-able data for reports and the stored rows: Decimals as JSON numbers where a float
    holds them exactly (else as text), dates in ISO form, models and dicts as objects."""
    if isinstance(value, decimal.Decimal):
        number = float(value)
        if decimal.Decimal(repr(number)) == value:
            return int(number) if number.is_integer() and abs(number) < 2**53 else number
        return _number_text(value)
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return generic_jsonable(value)


def _number_text(number: decimal.Decimal) -> str:
    text = format(number.normalize(), "f")
    return "0" if text in ("-0", "0") else text


def normalize_text(text: str) -> str:
    """NFKC, casefolded, punctuation dropped, whitespace collapsed: `"  Anna-Berg. "` ->
    `"annaberg"`."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(c for c in folded if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())
