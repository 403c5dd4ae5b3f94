"""What a report says, as typed values: `Report` and the parts it is made of.

`data.py` and `review.py` read them from a pipeline's output; `html.py` renders them. Nothing
here knows about DuckDB or HTML, so either side can change without the other.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "Calibration",
    "CalibrationBin",
    "Counts",
    "ErrorClass",
    "Evaluation",
    "FieldAccuracy",
    "FieldFill",
    "Highlight",
    "Histogram",
    "Mismatch",
    "Report",
    "Review",
    "ReviewRow",
    "RowError",
    "RunInfo",
    "ValueLine",
]

#: grounding statuses that point at a place in the text (highlighted), best first
FOUND = ("exact", "normalized", "fuzzy")


@dataclass(frozen=True)
class Counts:
    """Row counts and usage of a run, of all runs, or of what the tables hold now (None: not
    known for that scope, e.g. cached rows of the tables)."""

    rows_ok: int | None
    rows_failed: int | None
    rows_cached: int | None
    rows_skipped: int | None
    requests: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    cost_usd: float | None

    @property
    def tokens(self) -> int | None:
        """Prompt and completion tokens together (reasoning tokens are part of completion)."""
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


@dataclass(frozen=True)
class RunInfo:
    """The latest run that wrote the table, from `_extract_runs`."""

    run_id: str
    status: str
    stop_reason: str | None
    model: str | None
    started_at: dt.datetime | None
    ended_at: dt.datetime | None
    counts: Counts

    @property
    def seconds(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return (self.ended_at - self.started_at).total_seconds()


@dataclass(frozen=True)
class ErrorClass:
    """Failed rows of one error class: how many, how many the latest run wrote, one message."""

    name: str
    count: int
    in_latest_run: int
    example: str | None


@dataclass(frozen=True)
class FieldFill:
    """How many rows hold a value at `path` (a dotted path into nested models)."""

    path: str
    filled: int
    total: int
    #: "list" when filled means non-empty, "model" for a nested model, else "value"
    kind: str = "value"

    @property
    def share(self) -> float | None:
        return self.filled / self.total if self.total else None


@dataclass(frozen=True)
class Histogram:
    """`_min_confidence` of the table's rows in ten bins of 0.1 (the last one includes 1.0)."""

    bins: tuple[int, ...]
    #: rows with a confidence, and below the review threshold
    total: int
    below: int
    threshold: float


@dataclass(frozen=True)
class FieldAccuracy:
    """One line of `<table>_eval`: a field (or '*', all fields) of the latest evaluation."""

    field: str
    mode: str | None
    n: int | None
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None


@dataclass(frozen=True)
class CalibrationBin:
    """Evaluated values whose confidence falls in [low, high): how sure and how often right."""

    low: float
    high: float
    n: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class Calibration:
    """Confidence against correctness over the latest evaluation's values."""

    bins: tuple[CalibrationBin, ...]
    #: expected calibration error: the n-weighted mean gap between confidence and accuracy
    ece: float
    n: int


@dataclass(frozen=True)
class Evaluation:
    """The latest evaluation of the table against labels (`extract eval`)."""

    evaluated_at: dt.datetime | None
    run_id: str | None
    labels: str | None
    overall: tuple[FieldAccuracy, ...]
    fields: tuple[FieldAccuracy, ...]
    calibration: Calibration | None
    #: why there is no calibration (None when there is one)
    calibration_note: str | None = None


@dataclass(frozen=True)
class Highlight:
    """A grounded value's place in one input column: `text[start:end]` (characters)."""

    column: str
    start: int
    end: int
    status: str
    path: str


@dataclass(frozen=True)
class Mismatch:
    """An evaluated value that did not match its label: the label's value and the table's,
    decoded from the JSON text `extract eval` stores (`actual` is None for a missing row)."""

    field: str
    expected: Any
    actual: Any
    score: float | None


@dataclass(frozen=True)
class ValueLine:
    """One extracted value of a row: its path, the value, how sure and where it was found.

    `grounding` is the status (`exact`, `normalized`, `fuzzy`, `none` = not found) or None when
    the value was not looked for (enums, booleans, nulls) or the output has no grounding.
    """

    path: str
    value: Any
    confidence: float | None
    grounding: str | None
    wrong: Mismatch | None = None


@dataclass(frozen=True)
class RowError:
    """Why a row failed: its error class, message and the last raw answer (shortened)."""

    error_class: str | None
    message: str | None
    raw_output: str | None
    attempts: int | None


@dataclass(frozen=True)
class ReviewRow:
    """A row someone should look at, with the reasons, its input text and its values."""

    key: Any
    #: of REASONS in review.py: failed, wrong, ungrounded, low_confidence
    reasons: tuple[str, ...]
    min_confidence: float | None = None
    ungrounded: int | None = None
    error: RowError | None = None
    #: input columns the prompt uses -> the text the model saw (empty: not available)
    texts: dict[str, str] = field(default_factory=dict)
    highlights: tuple[Highlight, ...] = ()
    values: tuple[ValueLine, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()


@dataclass(frozen=True)
class Review:
    """The rows to check: at most `cap` of them, and how many of each reason there are."""

    rows: tuple[ReviewRow, ...]
    #: distinct rows with at least one reason
    total: int
    by_reason: dict[str, int]
    threshold: float
    cap: int
    #: what could not be shown (no source text, no confidence, ...)
    notes: tuple[str, ...] = ()

    @property
    def left_out(self) -> int:
        return max(0, self.total - len(self.rows))


@dataclass(frozen=True)
class Report:
    """Everything a report page shows about the latest run of one pipeline's output."""

    pipeline: str
    table: str
    output: Path
    key: str
    model: str
    generated_at: dt.datetime
    run: RunInfo | None
    all_runs: Counts | None
    runs_count: int
    in_tables: Counts
    errors: tuple[ErrorClass, ...]
    fills: tuple[FieldFill, ...]
    histogram: Histogram | None
    evaluation: Evaluation | None
    review: Review
    #: what the output lacks (tables or columns of older versions), said once at the top
    missing: tuple[str, ...] = ()
