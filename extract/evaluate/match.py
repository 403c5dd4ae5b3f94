"""Match modes: how an expected value and the value a run wrote are compared.

Both sides are first coerced to the field's type (coerce.py), so a labels CSV's text `"12.50"`
and the table's DECIMAL 12.5 meet as the same Decimal. Then:

    exact       equal as typed values (Decimal 12.5 == 12.50; text compared as it is)
    normalized  text after NFKC, casefold, punctuation dropped, whitespace collapsed  (strings)
    numeric     |expected - actual| <= max(tolerance, relative * |expected|); both 0 by default,
                which is numeric equality                                   (int, float, decimal)
    date        parsed dates, datetimes or times, equal                      (dates, datetimes)
    enum        equal values; the comparison also builds a confusion table   (enums, bools)
    fuzzy       rapidfuzz's ratio / 100 of the normalized texts >= threshold (0.9 by default)
    set         a list as a multiset of normalized items: precision, recall and F1; the row is
                right when F1 == 1. Items that are models are compared whole, each leaf
                normalized by its own type (text normalized, numbers as numbers, dates as ISO)
                                                                             (every list)

A null on both sides is right; a null on one side is wrong.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..config import EvalFieldConfig
from ..schema.columns import generic_jsonable
from ..trust.shape import Fields, Items, Leaf, Shape
from .coerce import (
    DATE_KINDS,
    NUMBER_KINDS,
    TEXT_KINDS,
    as_text,
    normalize_text,
    short,
    to_decimal,
    to_temporal,
)

__all__ = ["DEFAULT_THRESHOLD", "MODES", "Matcher", "Score", "default_mode", "make_matcher", "prf"]

MODES = ("exact", "normalized", "numeric", "date", "set", "enum", "fuzzy")
DEFAULT_THRESHOLD = 0.9


def default_mode(shape: Shape, listed: bool) -> str:
    """The mode a field gets when the pipeline file's `eval.fields` does not set one."""
    if listed or isinstance(shape, Items):
        return "set"
    if isinstance(shape, Leaf):
        if shape.kind in TEXT_KINDS:
            return "normalized"
        if shape.kind in NUMBER_KINDS:
            return "numeric"
        if shape.kind in DATE_KINDS:
            return "date"
        if shape.kind in ("enum", "bool"):
            return "enum"
    return "exact"


# ---------------------------------------------------------------------------- sets


def _item_key(shape: Shape, value: Any) -> Any:
    """An item as a set member: each leaf normalized by its own type."""
    if value is None:
        return None
    if isinstance(shape, Leaf):
        if shape.kind in TEXT_KINDS:
            return normalize_text(as_text(value))
        if shape.kind in NUMBER_KINDS or shape.kind in DATE_KINDS:
            return as_text(value)
        return generic_jsonable(value)
    if isinstance(shape, Items):
        return [_item_key(shape.item, v) for v in value]
    return {k: _item_key(sub, value.get(k)) for k, sub in shape.fields}


# ---------------------------------------------------------------------------- scores


@dataclass(frozen=True)
class Score:
    """One compared value: `score` is 1/0, the F1 of a set, or a fuzzy similarity."""

    score: float
    correct: bool
    #: set mode: items in both, only in the actual list, only in the expected one
    tp: int = 0
    fp: int = 0
    fn: int = 0


WRONG = Score(0.0, False)
RIGHT = Score(1.0, True)


def prf(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    """Precision, recall and F1; an empty side counts as fully right when the other is too."""
    precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
    recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


class Unusable:
    """An actual value the mode cannot read (text in a numeric comparison): always wrong."""

    def __init__(self, raw: Any):
        self.raw = raw


class Matcher:
    """Compares values of one field in one mode. `prepare` turns a coerced value into what the
    mode compares (ValueError when it cannot); `compare` handles nulls, then scores."""

    mode = "exact"

    def __init__(self, item: Shape):
        #: the field's shape (for set mode: each item's)
        self.item = item

    def prepare(self, value: Any) -> Any:
        return value

    def prepare_actual(self, value: Any) -> Any:
        """`prepare`, except that an unreadable value is kept as `Unusable`: it is wrong."""
        if value is None:
            return None
        try:
            return self.prepare(value)
        except ValueError:
            return Unusable(value)

    def score(self, expected: Any, actual: Any) -> Score:
        return RIGHT if expected == actual else WRONG

    def compare(self, expected: Any, actual: Any) -> Score:
        """Score prepared values: both null is right, one null or an unusable value wrong."""
        if expected is None and actual is None:
            return RIGHT
        if expected is None or actual is None or isinstance(actual, Unusable):
            return self.missing(expected)
        return self.score(expected, actual)

    def missing(self, expected: Any) -> Score:
        """The score when there is no usable actual value (or the row has none)."""
        return WRONG

    def describe(self) -> dict[str, Any]:
        """The mode and its options, for reports."""
        return {"mode": self.mode}


class Normalized(Matcher):
    mode = "normalized"

    def prepare(self, value: Any) -> Any:
        return normalize_text(as_text(value))


class Numeric(Matcher):
    mode = "numeric"

    def __init__(self, item: Shape, tolerance: float = 0.0, relative: float = 0.0):
        super().__init__(item)
        self.tolerance = decimal.Decimal(str(tolerance))
        self.relative = decimal.Decimal(str(relative))

    def prepare(self, value: Any) -> Any:
        return to_decimal(value)

    def score(self, expected: Any, actual: Any) -> Score:
        allowed = max(self.tolerance, self.relative * abs(expected))
        return RIGHT if abs(expected - actual) <= allowed else WRONG

    def describe(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "tolerance": float(self.tolerance),
            "relative": float(self.relative),
        }


class Date(Matcher):
    mode = "date"

    def prepare(self, value: Any) -> Any:
        return to_temporal(value)

    def score(self, expected: Any, actual: Any) -> Score:
        # a date against a datetime (a text field read as dates): compare the days
        if isinstance(expected, dt.datetime) != isinstance(actual, dt.datetime):
            if isinstance(expected, dt.time) or isinstance(actual, dt.time):
                return WRONG
            expected = expected.date() if isinstance(expected, dt.datetime) else expected
            actual = actual.date() if isinstance(actual, dt.datetime) else actual
        return RIGHT if expected == actual else WRONG


class EnumMatch(Matcher):
    mode = "enum"


class Fuzzy(Matcher):
    mode = "fuzzy"

    def __init__(self, item: Shape, threshold: float = DEFAULT_THRESHOLD):
        super().__init__(item)
        self.threshold = threshold

    def prepare(self, value: Any) -> Any:
        return normalize_text(as_text(value))

    def score(self, expected: Any, actual: Any) -> Score:
        from rapidfuzz import fuzz

        similarity = fuzz.ratio(expected, actual) / 100
        return Score(similarity, similarity >= self.threshold)

    def describe(self) -> dict[str, Any]:
        return {"mode": self.mode, "threshold": self.threshold}


class SetMatch(Matcher):
    mode = "set"

    def prepare(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"{short(value)} is not a list")
        return Counter(
            json.dumps(_item_key(self.item, v), sort_keys=True, ensure_ascii=False) for v in value
        )

    def score(self, expected: Any, actual: Any) -> Score:
        tp = sum((expected & actual).values())
        fp = sum(actual.values()) - tp
        fn = sum(expected.values()) - tp
        f1 = prf(tp, fp, fn)[2]
        return Score(f1, f1 == 1.0, tp, fp, fn)

    def missing(self, expected: Any) -> Score:
        # every expected item is missed: it counts against recall
        fn = sum(expected.values()) if isinstance(expected, Counter) else 0
        return Score(0.0, False, 0, 0, fn)


_SINGLE = {"exact": Matcher, "normalized": Normalized, "date": Date, "enum": EnumMatch}


def make_matcher(
    mode: str, shape: Shape, listed: bool, options: EvalFieldConfig | None = None
) -> Matcher:
    """The matcher of a field in `mode`; ValueError when the mode does not suit the field."""
    options = options or EvalFieldConfig()
    is_list = listed or isinstance(shape, Items)
    if mode == "set":
        if not is_list:
            raise ValueError("mode set compares lists; this field holds one value")
        item = shape.item if isinstance(shape, Items) else shape
        return SetMatch(item)
    if is_list and mode != "exact":
        raise ValueError(f"mode {mode} compares single values; this field is a list (use set)")
    if isinstance(shape, Fields) and mode != "exact":
        raise ValueError(f"mode {mode} compares single values; this field is an object")
    if mode == "numeric":
        return Numeric(shape, options.tolerance or 0.0, options.relative or 0.0)
    if mode == "fuzzy":
        threshold = options.threshold if options.threshold is not None else DEFAULT_THRESHOLD
        return Fuzzy(shape, threshold)
    return _SINGLE[mode](shape)
