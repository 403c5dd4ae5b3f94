"""Labelled values against the output's: one score per (row, field), then per field and overall.

A labelled row is compared when its key is in the output table. A key in the errors table counts
as wrong for every labelled field, and so does a key in neither ("missing from output"): the
denominator is every labelled value, so a run cannot score higher by dropping rows. Output rows
that no label names are only counted (`unlabelled`).
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from ..trust.shape import Fields
from .coerce import as_text, coerce
from .labels import Labels, cell
from .match import Matcher, Score, prf
from .paths import FieldPath, slots_at, value_at
from .result import COMPARED, IN_ERRORS, MISSING, Bin, Calibration, FieldResult, Flagged, ValueScore

__all__ = ["BIN_EDGES", "Evaluated", "OutputRows", "compare", "confidence_of", "grounding_of"]

#: confidence bins of the calibration table: [0, 0.5), [0.5, 0.8), ..., [0.99, 1]
BIN_EDGES = (0.0, 0.5, 0.8, 0.95, 0.99, 1.0)
#: below this confidence a value counts as flagged
LOW_CONFIDENCE = 0.8
#: grounding statuses from the strongest to the weakest
_STRENGTH = {"exact": 0, "normalized": 1, "fuzzy": 2, "none": 3}


@dataclass(frozen=True)
class Evaluated:
    """A labelled field: its path, how it is compared, and where the labels hold it."""

    spec: FieldPath
    matcher: Matcher
    column: str
    #: the keys inside the column's objects (a `vendor` column holding `{"name": ...}`)
    inner: tuple[str, ...] = ()


@dataclass
class OutputRows:
    """What the output holds for the labelled keys."""

    #: key -> the row's field columns (and `_confidence`, `_grounding` when the table has them)
    rows: dict[str, dict[str, Any]]
    #: key -> error class, for the keys in the errors table
    errors: dict[str, str]
    unlabelled: int
    run_id: str | None


def confidence_of(slots: list[Any]) -> float | None:
    """A value's confidence: a leaf's own, a list's lowest."""
    numbers = [float(s) for s in slots if isinstance(s, int | float) and not isinstance(s, bool)]
    return min(numbers) if numbers else None


def grounding_of(slots: list[Any]) -> str | None:
    """A value's grounding status: a leaf's own, a list's weakest ('none' if any item is)."""
    statuses = [str(s["status"]) for s in slots if isinstance(s, dict) and s.get("status")]
    if not statuses:
        return None
    return max(statuses, key=lambda s: _STRENGTH.get(s, len(_STRENGTH)))


def _expected(field: Evaluated, labels: Labels) -> list[tuple[Any, Any]]:
    """Each labelled row's expected value, coerced and prepared; ConfigError naming the cell."""
    out = []
    shape = field.spec.value_shape
    for key, row in labels.rows:
        try:
            value = coerce(shape, cell(row, field.column, field.inner))
            out.append((value, None if value is None else field.matcher.prepare(value)))
        except ValueError as e:
            where = field.column if not field.inner else f"{field.column} ({field.spec.path})"
            raise ConfigError(
                f"labels {labels.label}: row {labels.key}={key}, column {where}: {e}",
                path=labels.label,
            ) from e
    return out


def _actual(field: Evaluated, row: dict[str, Any], top: Fields) -> Any:
    value = value_at(row, top, field.spec.parts)
    try:
        return coerce(field.spec.value_shape, value)
    except ValueError:
        return value  # kept as written; the matcher finds it unusable


def _score(
    field: Evaluated, key: str, expected: Any, prepared: Any, output: OutputRows, top: Fields
) -> tuple[Score, ValueScore]:
    path, parts = field.spec.path, field.spec.parts
    row = output.rows.get(key)
    if row is None:
        score = field.matcher.missing(prepared)
        status = IN_ERRORS if key in output.errors else MISSING
        value = ValueScore(
            key,
            path,
            expected,
            None,
            score.score,
            False,
            status,
            error_class=output.errors.get(key),
        )
        return score, value
    actual = _actual(field, row, top)
    score = field.matcher.compare(prepared, field.matcher.prepare_actual(actual))
    value = ValueScore(
        key,
        path,
        expected,
        actual,
        score.score,
        score.correct,
        COMPARED,
        confidence_of(slots_at(row.get("_confidence"), top, parts)),
        grounding_of(slots_at(row.get("_grounding"), top, parts)),
    )
    return score, value


def compare(
    fields: list[Evaluated], labels: Labels, output: OutputRows, top: Fields
) -> tuple[dict[str, FieldResult], list[ValueScore], Calibration | None]:
    """Score every labelled value (row by row, fields in labels order); aggregate per field;
    calibrate by confidence."""
    expected = [_expected(field, labels) for field in fields]
    values: list[ValueScore] = []
    scores: list[list[Score]] = [[] for _ in fields]
    confusion: list[Counter[tuple[str, str]]] = [Counter() for _ in fields]
    for i, (key, _) in enumerate(labels.rows):
        for j, field in enumerate(fields):
            want, prepared = expected[j][i]
            score, value = _score(field, key, want, prepared, output, top)
            scores[j].append(score)
            values.append(value)
            if field.matcher.mode == "enum" and value.status == COMPARED:
                confusion[j][(_label(want), _label(value.actual))] += 1
    results = {
        field.spec.path: _field_result(field, scores[j], confusion[j])
        for j, field in enumerate(fields)
    }
    return results, values, _calibration(values)


def _label(value: Any) -> str:
    return "null" if value is None else as_text(value)


def _field_result(
    field: Evaluated, scores: list[Score], confusion: Counter[tuple[str, str]]
) -> FieldResult:
    mode = field.matcher.mode
    result = FieldResult(
        field.spec.path,
        mode,
        n=len(scores),
        correct=sum(s.correct for s in scores),
        options={k: v for k, v in field.matcher.describe().items() if k != "mode"},
    )
    if mode == "set":
        p, r, f1 = prf(
            sum(s.tp for s in scores), sum(s.fp for s in scores), sum(s.fn for s in scores)
        )
        return replace(result, precision=p, recall=r, f1=f1)
    if mode == "enum":
        table: dict[str, dict[str, int]] = {}
        for (expected, actual), count in sorted(confusion.items()):
            table.setdefault(expected, {})[actual] = count
        return replace(result, confusion=table)
    return result


def _calibration(values: list[ValueScore]) -> Calibration | None:
    compared = [v for v in values if v.status == COMPARED]
    if not any(v.confidence is not None or v.grounding is not None for v in compared):
        return None
    bins = []
    sure = [v for v in compared if v.confidence is not None]
    if sure:
        for i, (low, high) in enumerate(itertools.pairwise(BIN_EDGES)):
            last = i == len(BIN_EDGES) - 2
            inside = [
                v
                for v in sure
                if v.confidence is not None
                and low <= v.confidence
                and (v.confidence < high or (last and v.confidence <= high))
            ]
            bins.append(Bin(low, high, len(inside), sum(v.correct for v in inside)))
    wrong = [v for v in compared if not v.correct]
    unsure = {
        i for i, v in enumerate(wrong) if v.confidence is not None and v.confidence < LOW_CONFIDENCE
    }
    ungrounded = {i for i, v in enumerate(wrong) if v.grounding == "none"}
    flagged = Flagged(
        len(wrong),
        len(unsure) if sure else None,
        len(ungrounded) if any(v.grounding is not None for v in compared) else None,
        len(unsure | ungrounded),
    )
    return Calibration(bins, flagged)
