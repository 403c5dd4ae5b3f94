"""`extract report`: one self-contained HTML page about a pipeline's output, for the person who
decides which rows to check.

    facts.py    what a report says, as typed values (`Report` and its parts)
    data.py     the output's runs, counts, errors, fill rates, confidence, evaluations
    review.py   the rows to check, with their input text, values and grounding
    html.py     a Report as one HTML page (escaped, no network): header, counts, panels
    cards.py    the review list: input texts with the grounded values marked, values
    svg.py      the confidence histogram        assets.py   the inline style sheet and script
    text.py     escaping and the spelling of numbers, money and times

The output is opened read-only (a run writing it at the same time is not disturbed, and the
report fails at once if the file is locked); the source is read only for the rows listed.

    path = extract.report.report_pipeline("pipelines/tickets.yaml")
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Overrides, PipelineConfig, load_pipeline
from ..errors import ConfigError, SinkError
from ..ledger.tables import RUNS_TABLE
from .facts import Report

if TYPE_CHECKING:
    from .data import Catalog

__all__ = [
    "DEFAULT_CAP",
    "DEFAULT_THRESHOLD",
    "Report",
    "default_report_path",
    "read_report",
    "render_report",
    "report_pipeline",
    "write_report",
]

#: rows whose lowest value confidence is below this are listed for review
DEFAULT_THRESHOLD = 0.8
#: at most this many rows are listed (the page says how many were left out)
DEFAULT_CAP = 200


def default_report_path(config: PipelineConfig) -> Path:
    """`<output folder>/<table>_report.html`."""
    return config.output.path.parent / f"{config.table}_report.html"


def read_report(
    config: PipelineConfig, *, threshold: float = DEFAULT_THRESHOLD, cap: int = DEFAULT_CAP
) -> Report:
    """What the report shows about the pipeline's output, read from it (read-only)."""
    from ..ledger import open_reader
    from ..outputs import open_output
    from . import data
    from .review import read_review

    if not 0 <= threshold <= 1:
        raise ConfigError(f"report threshold {threshold!r}: must be between 0 and 1")
    if cap < 1:
        raise ConfigError(f"report cap {cap!r}: must be at least 1")
    table, key = config.table, config.source.key
    ledger = open_output(config.output, table).ledger_path
    con = open_reader(ledger, table, key=key).con
    try:
        names = [table, f"{table}_errors", RUNS_TABLE, f"{table}_eval", f"{table}_eval_rows"]
        catalog = data.Catalog.read(con, names)
        missing = _missing(catalog, table, key)
        run = data.latest_run(con, catalog, table)
        totals, runs = data.all_runs(con, catalog, table)
        fields = data.schema_fields(catalog, table, key) if catalog.has(table) else []
        return Report(
            pipeline=config.name,
            table=table,
            output=config.output.path,
            key=key,
            model=config.model.name,
            generated_at=dt.datetime.now(dt.UTC),
            run=run,
            all_runs=totals,
            runs_count=runs,
            in_tables=data.in_tables(con, catalog, table),
            errors=data.error_classes(con, catalog, table, key, run.run_id if run else None),
            fills=data.fill_rates(con, table, fields) if fields else (),
            histogram=data.histogram(con, catalog, table, threshold),
            evaluation=data.evaluation(con, catalog, table),
            review=read_review(con, catalog, config, threshold=threshold, cap=cap),
            missing=tuple(missing),
        )
    finally:
        con.close()


def _missing(catalog: Catalog, table: str, key: str) -> list[str]:
    """What the output lacks of the tables and columns the report reads."""
    from .data import TRUST_COLUMNS

    out = []
    for name, why in (
        (table, "no result table: nothing was written yet"),
        (f"{table}_errors", "no errors table"),
        (RUNS_TABLE, "no runs table: run counts and usage are not known"),
    ):
        if not catalog.has(name):
            out.append(f"{name}: {why}")
    if catalog.has(table):
        if not catalog.has(table, key):
            out.append(f"{table}: no key column {key!r}")
        absent = [c for c in TRUST_COLUMNS if not catalog.has(table, c)]
        if absent:
            out.append(
                f"{table}: no {', '.join(absent)} column{'s' if len(absent) > 1 else ''} "
                "(confidence and grounding are not shown for what is missing)"
            )
    return out


def render_report(report: Report) -> str:
    """The report as one HTML page."""
    from .html import render

    return render(report)


def write_report(
    config: PipelineConfig,
    out: Path | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    cap: int = DEFAULT_CAP,
) -> Path:
    """Write the report page of the pipeline's output to `out` (default
    `<output folder>/<table>_report.html`); return its path.

    `threshold`: rows whose lowest value confidence is below it are listed for review; `cap`:
    at most this many rows are listed. Raises SinkError when the output cannot be read or the
    page cannot be written.
    """
    page = render_report(read_report(config, threshold=threshold, cap=cap))
    target = Path(out) if out is not None else default_report_path(config)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # written beside and moved into place: a reader never sees half a page
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            tmp.write_text(page, encoding="utf-8")
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    except OSError as err:
        raise SinkError(
            f"{target}: cannot write the report ({err.strerror or err})", path=str(target)
        ) from err
    return target


def report_pipeline(
    path: str | Path,
    overrides: Overrides | None = None,
    out: Path | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    cap: int = DEFAULT_CAP,
) -> Path:
    """Load the pipeline file at `path` (with `--set`-style `overrides`) and write the report
    of its output, as `extract report` does; return the page's path."""
    return write_report(load_pipeline(path, overrides or ()), out, threshold=threshold, cap=cap)
