"""Evaluations as text for a terminal (tables through extract/display.py) or as JSON.

Several evaluations (prompt A against prompt B, model A against model B) print one table with
an accuracy column per pipeline side by side, then each one's details.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ..display import text_table
from .coerce import as_text, plain
from .result import EvalResult, FieldResult

__all__ = ["render_json", "render_text"]

#: characters of an expected or actual value shown in the mismatch table
VALUE_CHARS = 40


def _num(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def _show(value: Any) -> str:
    if value is None:
        text = "null"
    elif isinstance(value, dict | list):
        text = json.dumps(plain(value), ensure_ascii=False)
    else:
        text = as_text(value)
    text = " ".join(text.split())
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 3] + "..."


def _names(results: Sequence[EvalResult]) -> list[str]:
    """A column name per pipeline: its name, or its file's name where names repeat."""
    names = [r.pipeline for r in results]
    if len(set(names)) < len(names):
        names = [r.file.name for r in results]
    if len(set(names)) < len(names):
        names = [f"{i}:{r.pipeline}" for i, r in enumerate(results, 1)]
    return names


def _counts(r: EvalResult) -> str:
    return (
        f"{r.pipeline}: {r.rows} labelled rows: {r.compared} compared, {r.in_errors} in errors, "
        f"{r.missing} missing from output (both counted wrong); {r.unlabelled} output rows "
        f"unlabelled (ignored)\n  labels {r.labels}, run {r.run_id or '(none recorded)'}"
    )


def _field_table(results: Sequence[EvalResult]) -> str:
    names = _names(results)
    paths = list(dict.fromkeys(p for r in results for p in r.fields))
    rows: list[dict[str, Any]] = []
    single = len(results) == 1
    for path in paths:
        found = [r.fields.get(path) for r in results]
        known = [f for f in found if f is not None]
        row: dict[str, Any] = {
            "field": path,
            "mode": "/".join(dict.fromkeys(_mode(f) for f in known)),
            "n": "/".join(dict.fromkeys(str(f.n) for f in known)),
        }
        for name, f in zip(names, found, strict=True):
            row["accuracy" if single else name] = "" if f is None else _num(f.accuracy)
        if single and known[0].mode == "set":
            f = known[0]
            row.update(precision=_num(f.precision), recall=_num(f.recall), f1=_num(f.f1))
        rows.append(row)
    totals = dict.fromkeys(str(sum(f.n for f in r.fields.values())) for r in results)
    total: dict[str, Any] = {"field": "overall", "mode": "", "n": "/".join(totals)}
    for name, r in zip(names, results, strict=True):
        total["accuracy" if single else name] = _num(r.overall)
    rows.append(total)
    columns = ["field", "mode", "n", *(["accuracy"] if single else names)]
    if single and any(f.mode == "set" for f in results[0].fields.values()):
        columns += ["precision", "recall", "f1"]
    return text_table(rows, columns)


def _mode(f: FieldResult) -> str:
    if "threshold" in f.options:
        return f"{f.mode} >= {f.options['threshold']:g}"
    tolerance, relative = f.options.get("tolerance"), f.options.get("relative")
    if tolerance or relative:
        bounds = [f"+-{tolerance:g}" if tolerance else "", f"+-{relative:g}x" if relative else ""]
        return f"{f.mode} {' '.join(b for b in bounds if b)}"
    return f.mode


def _details(r: EvalResult, max_mismatches: int) -> list[str]:
    out: list[str] = []
    for f in r.fields.values():
        if not f.confusion:
            continue
        actuals = sorted({a for row in f.confusion.values() for a in row})
        rows = [
            {"expected \\ actual": e, **{a: row.get(a, 0) for a in actuals}}
            for e, row in f.confusion.items()
        ]
        out += [
            "",
            f"confusion of {f.path} (compared rows; expected by row, actual by column)",
            text_table(rows, ["expected \\ actual", *actuals]),
        ]
    if r.calibration is not None:
        c = r.calibration
        if c.bins:
            rows = [{"confidence": b.name, "n": b.n, "accuracy": _num(b.accuracy)} for b in c.bins]
            out += [
                "",
                "calibration (compared values that have a confidence)",
                text_table(rows, ["confidence", "n", "accuracy"]),
            ]
        fl = c.flagged
        out += [
            "",
            f"flagged: of {fl.wrong} wrong values, {_pct(fl.share(fl.either, fl.wrong))} "
            f"have confidence < 0.8 or grounding 'none' (confidence < 0.8: "
            f"{_pct(fl.share(fl.low_confidence, fl.wrong))}, grounding 'none': "
            f"{_pct(fl.share(fl.ungrounded, fl.wrong))})",
        ]
    wrong = r.mismatches
    if wrong:
        shown = wrong[:max_mismatches]
        more = f"; the first {len(shown)} shown" if len(shown) < len(wrong) else ""
        rows = [
            {
                "key": v.key,
                "field": v.field,
                "expected": _show(v.expected),
                "actual": _show(v.actual),
                # a partial score (a set's F1, a fuzzy similarity) says how far off it is
                "score": "" if v.score in (0, 1) else _num(v.score),
            }
            for v in shown
        ]
        out += [
            "",
            f"mismatches ({len(wrong)}{more})",
            text_table(rows, ["key", "field", "expected", "actual", "score"]),
        ]
    errors = list(dict.fromkeys((v.key, v.error_class) for v in r.values if v.error_class))
    if errors:
        listed = ", ".join(f"{k} ({c})" for k, c in errors[:max_mismatches])
        out += ["", f"in the errors table, counted wrong ({len(errors)}): {listed}"]
    missing = list(dict.fromkeys(v.key for v in r.values if v.status == "missing"))
    if missing:
        listed = ", ".join(missing[:max_mismatches])
        out += ["", f"missing from output, counted wrong ({len(missing)}): {listed}"]
    return out


def render_text(results: Sequence[EvalResult], *, max_mismatches: int = 50) -> str:
    """The terminal report: counts, the per-field table, then each evaluation's details."""
    lines = [_counts(r) for r in results]
    lines += ["", _field_table(results)]
    for r in results:
        details = _details(r, max_mismatches)
        if details and len(results) > 1:
            lines += ["", f"== {r.pipeline} ({r.file.name})"]
        lines += details
    for r in results:
        if r.min_accuracy is not None:
            verdict = "passed" if r.passed else "FAILED"
            lines += [
                f"{r.pipeline}: overall {_num(r.overall)} against the minimum "
                f"{r.min_accuracy:g}: {verdict}"
            ]
    return "\n".join(lines)


def render_json(results: Sequence[EvalResult]) -> str:
    """One JSON object: the evaluation's, or `{"pipelines": [...]}` for several."""
    if len(results) == 1:
        return json.dumps(results[0].to_dict(), ensure_ascii=False)
    return json.dumps({"pipelines": [r.to_dict() for r in results]}, ensure_ascii=False)
