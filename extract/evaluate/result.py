"""What an evaluation found: per field, per labelled value, overall; as data and as JSON."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import AccuracyBelowMinimum

__all__ = ["Bin", "Calibration", "EvalResult", "FieldResult", "Flagged", "ValueScore"]

#: where a labelled row's values came from
COMPARED, IN_ERRORS, MISSING = "compared", "in_errors", "missing"


@dataclass(frozen=True)
class ValueScore:
    """One labelled value of one row: what was expected, what the run wrote, and its score.

    Rows in the errors table and rows missing from the output have no actual value and score 0.
    """

    key: str
    field: str
    expected: Any
    actual: Any
    score: float
    correct: bool
    #: compared, in_errors or missing
    status: str = COMPARED
    #: the value's confidence (a list's lowest) and grounding status (a list's weakest)
    confidence: float | None = None
    grounding: str | None = None
    #: the error class of a row in the errors table
    error_class: str | None = None


@dataclass(frozen=True)
class FieldResult:
    """One field's accuracy: `n` labelled values, `correct` of them right."""

    path: str
    mode: str
    n: int
    correct: int
    #: the mode's options (tolerance, relative, threshold)
    options: dict[str, Any] = field(default_factory=dict)
    #: set mode: micro-averaged over every item of every labelled row
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    #: enum mode: {expected: {actual: count}} over the compared rows ("null" for None)
    confusion: dict[str, dict[str, int]] | None = None

    @property
    def accuracy(self) -> float:
        return self.correct / self.n if self.n else 0.0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "accuracy": self.accuracy,
            "n": self.n,
            "correct": self.correct,
            "mode": self.mode,
            **self.options,
        }
        if self.mode == "set":
            out.update(precision=self.precision, recall=self.recall, f1=self.f1)
        return out


@dataclass(frozen=True)
class Bin:
    """Values whose confidence is in [low, high) (the last bin includes 1)."""

    low: float
    high: float
    n: int
    correct: int

    @property
    def name(self) -> str:
        close = "]" if self.high >= 1 else ")"
        return f"[{self.low:g}, {self.high:g}{close}"

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None


@dataclass(frozen=True)
class Flagged:
    """Of the wrong values of compared rows, the shares a reviewer would have been pointed to."""

    wrong: int
    #: None when no compared value has a confidence (or a grounding status)
    low_confidence: int | None
    ungrounded: int | None
    either: int

    @staticmethod
    def share(part: int | None, whole: int) -> float | None:
        return part / whole if whole and part is not None else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "wrong": self.wrong,
            "flagged": self.share(self.either, self.wrong),
            "low_confidence": self.share(self.low_confidence, self.wrong),
            "ungrounded": self.share(self.ungrounded, self.wrong),
        }


@dataclass(frozen=True)
class Calibration:
    """Accuracy by confidence (empty without confidences), and what trust flags caught."""

    bins: list[Bin]
    flagged: Flagged

    def to_dict(self) -> dict[str, Any]:
        return {
            "bins": [
                {
                    "bin": b.name,
                    "low": b.low,
                    "high": b.high,
                    "n": b.n,
                    "correct": b.correct,
                    "accuracy": b.accuracy,
                }
                for b in self.bins
            ],
            "flagged": self.flagged.to_dict(),
        }


@dataclass
class EvalResult:
    """An evaluation of one pipeline's output against a labels file."""

    pipeline: str
    file: Path
    table: str
    labels: str
    #: the latest run that wrote the table
    run_id: str | None
    evaluated_at: dt.datetime
    #: labelled rows; of them in the output table, in the errors table, in neither
    rows: int
    compared: int
    in_errors: int
    missing: int
    #: output rows that no label names (not evaluated)
    unlabelled: int
    fields: dict[str, FieldResult]
    values: list[ValueScore]
    calibration: Calibration | None = None
    #: the overall accuracy below which `check()` raises
    min_accuracy: float | None = None

    @property
    def overall(self) -> float:
        """The share of every labelled value that is right (errors and missing rows count)."""
        n = sum(f.n for f in self.fields.values())
        return sum(f.correct for f in self.fields.values()) / n if n else 0.0

    @property
    def mismatches(self) -> list[ValueScore]:
        """The wrong values of the rows that were compared."""
        return [v for v in self.values if v.status == COMPARED and not v.correct]

    @property
    def passed(self) -> bool:
        return self.min_accuracy is None or self.overall >= self.min_accuracy

    def check(self) -> None:
        """Raise AccuracyBelowMinimum (exit 6) when the overall accuracy is below the minimum."""
        if self.min_accuracy is not None and not self.passed:
            raise AccuracyBelowMinimum(
                f"{self.pipeline}: accuracy {self.overall:.3f} is below the minimum "
                f"{self.min_accuracy:g}",
                pipeline=self.pipeline,
                accuracy=self.overall,
                minimum=self.min_accuracy,
            )

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `extract eval --format json` prints."""
        from .coerce import plain

        errors: dict[str, str | None] = {}
        for v in self.values:
            if v.status == IN_ERRORS:
                errors.setdefault(v.key, v.error_class)
        return {
            "pipeline": self.pipeline,
            "file": str(self.file),
            "table": self.table,
            "labels": self.labels,
            "run_id": self.run_id,
            "evaluated_at": self.evaluated_at.isoformat(),
            "rows": self.rows,
            "compared": self.compared,
            "in_errors": self.in_errors,
            "missing": self.missing,
            "unlabelled": self.unlabelled,
            # rows in the errors table and rows missing from the output count as wrong
            "overall": self.overall,
            "min_accuracy": self.min_accuracy,
            "passed": self.passed,
            "fields": {p: f.to_dict() for p, f in self.fields.items()},
            "confusion": {p: f.confusion for p, f in self.fields.items() if f.confusion},
            "calibration": None if self.calibration is None else self.calibration.to_dict(),
            "mismatches": [
                {
                    "key": v.key,
                    "field": v.field,
                    "expected": plain(v.expected),
                    "actual": plain(v.actual),
                    "score": v.score,
                    "confidence": v.confidence,
                    "grounding": v.grounding,
                }
                for v in self.mismatches
            ],
            "error_rows": [{"key": k, "error_class": c} for k, c in errors.items()],
            "missing_keys": list(dict.fromkeys(v.key for v in self.values if v.status == MISSING)),
        }
