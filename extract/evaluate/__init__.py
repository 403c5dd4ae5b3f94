"""`extract eval`: how accurate a run was, against labelled rows.

    labels.py    a labels file (CSV, Parquet, JSONL, DuckDB table) read as sources are read;
                 its columns matched to field paths
    paths.py     the schema's field paths (`vendor.name`, `line_items.amount`), the values and
                 the trust-column slots at them
    coerce.py    values as their field's type, however they arrived (CSV text, JSON, STRUCTs)
    match.py     the match modes: exact, normalized, numeric, date, set, enum, fuzzy
    compare.py   every labelled value scored; per field, overall, calibration by confidence
    store.py     the output's DuckDB file: labelled rows read, `<table>_eval(_rows)` appended
    result.py    EvalResult and its JSON form; `check()` raises below the minimum accuracy
    report.py    the terminal tables (several pipelines side by side) and the JSON text
    run.py       `evaluate(config)`: all of the above for one pipeline

`extract.evaluate_pipeline(path)` (extract/api.py) is the entry point.
"""

from __future__ import annotations

from .report import render_json, render_text
from .result import EvalResult, FieldResult, ValueScore
from .run import evaluate

__all__ = ["EvalResult", "FieldResult", "ValueScore", "evaluate", "render_json", "render_text"]
