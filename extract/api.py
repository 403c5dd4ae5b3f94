"""The library's entry points: what `extract run`, `plan`, `runs`, `errors` and `eval` do, as
functions.

    summary = extract.run_pipeline("pipelines/tickets.yaml", overrides={"run.concurrency": 8})

runs a pipeline file exactly as `extract run` does (the provider's endpoint is started and
stopped here, so a `provider: local` pipeline runs llama-server from Python too) and returns its
RunSummary. `source=` replaces the file's source with rows from Python: a polars or pandas
DataFrame, a pyarrow Table, or an iterable of dicts. Errors are the exception tree's
(extract/errors.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Overrides, load_pipeline
from .pipeline import Pipeline, prepare
from .results import RunSummary

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .evaluate import EvalResult
    from .ledger import LedgerReader
    from .plan import Plan
    from .replay import ReplayResult
    from .runner.loop import Progress
    from .transport.base import Transport

__all__ = [
    "batches_table",
    "errors_table",
    "evaluate_pipeline",
    "evaluate_pipelines",
    "open_pipeline",
    "plan_pipeline",
    "replay_pipeline",
    "run_pipeline",
    "runs_table",
]


def open_pipeline(path: str | Path, overrides: Overrides = (), source: Any = None) -> Pipeline:
    """Load, override, validate and prepare a pipeline file (close it when done)."""
    return prepare(load_pipeline(path, overrides), rows=source)


def run_pipeline(
    path: str | Path,
    overrides: Overrides | None = None,
    source: Any = None,
    *,
    limit: int | None = None,
    full_refresh: bool = False,
    retry_errors: bool = False,
    progress: Progress | None = None,
    transport: Transport | None = None,
    wait: bool = False,
    engine: str | None = None,
    address: str | None = None,
) -> RunSummary:
    """Run the pipeline file at `path` as `extract run` does; return the run's summary.

    `engine` (`local` or `ray`) and `address` (the Ray cluster's) replace run.engine and
    run.ray_address, as `--engine` and `--address` do.

    `overrides` maps dotted keys to values (`{"model.provider": "mock"}`) like `--set`; `source`
    replaces the file's source with rows from Python; `transport` replaces the provider's
    endpoint (tests: `extract.transport.fake.FakeTransport`). In run.mode batch, `wait` polls
    until every batch is collected; otherwise rows whose batch runs on are `rows_pending`.
    """
    from .engines import with_engine
    from .runner import run

    with open_pipeline(path, overrides or (), source) as pipeline:
        pipeline.config = with_engine(pipeline.config, engine, address)
        return run(
            pipeline,
            limit=limit,
            progress=progress,
            full_refresh=full_refresh,
            retry_errors=retry_errors,
            transport=transport,
            wait=wait,
        )


def plan_pipeline(
    path: str | Path,
    overrides: Overrides = (),
    *,
    limit: int | None = None,
    full_refresh: bool = False,
    retry_errors: bool = False,
) -> Plan:
    """What a run would do and roughly cost; sends nothing."""
    from .plan import make_plan

    with open_pipeline(path, overrides) as pipeline:
        return make_plan(
            pipeline, limit=limit, full_refresh=full_refresh, retry_errors=retry_errors
        )


def runs_table(
    path: str | Path, overrides: Overrides = (), *, last: int = 20
) -> list[dict[str, Any]]:
    """The pipeline's past runs, newest first (one mapping per run)."""
    reader = _reader(path, overrides)
    try:
        return reader.runs(last)
    finally:
        reader.con.close()


def replay_pipeline(
    path: str | Path, overrides: Overrides = (), *, sample: int = 100, seed: int = 0
) -> ReplayResult:
    """Ask `sample` random finished rows again, bypassing the cache, and say per field what share
    of values changed (`extract replay`); the result is appended to `<table>_replay`."""
    from .replay import replay

    return replay(load_pipeline(path, overrides), sample=sample, seed=seed)


def batches_table(
    path: str | Path, overrides: Overrides = (), *, last: int = 20
) -> list[dict[str, Any]]:
    """The pipeline's batches (run.mode batch), newest first: status, counts, cost."""
    reader = _reader(path, overrides)
    try:
        return reader.batches(last)
    finally:
        reader.con.close()


def errors_table(
    path: str | Path, overrides: Overrides = (), *, limit: int = 50
) -> list[dict[str, Any]]:
    """The rows of the pipeline's errors table, latest first."""
    reader = _reader(path, overrides)
    try:
        return reader.errors(limit)
    finally:
        reader.con.close()


def evaluate_pipeline(
    path: str | Path,
    labels: str | Path | None = None,
    overrides: Overrides | None = None,
    *,
    labels_table: str | None = None,
    min_accuracy: float | None = None,
    store: bool = True,
) -> EvalResult:
    """How accurate the pipeline's output is against labelled rows, as `extract eval` says.

    `labels` is a CSV, Parquet or JSONL file or `file.duckdb:table` (default: the pipeline
    file's `eval.labels`). With `store`, the evaluation is appended to the output's
    `<table>_eval` and `<table>_eval_rows`. `result.check()` raises AccuracyBelowMinimum when
    the overall accuracy is below `min_accuracy` (default: `eval.min_accuracy`).
    """
    from .evaluate import evaluate

    config = load_pipeline(path, overrides or ())
    return evaluate(
        config, labels, labels_table=labels_table, min_accuracy=min_accuracy, store=store
    )


def evaluate_pipelines(
    paths: Sequence[str | Path],
    labels: str | Path | None = None,
    overrides: Overrides | None = None,
    *,
    labels_table: str | None = None,
    min_accuracy: float | None = None,
    store: bool = True,
) -> list[EvalResult]:
    """`evaluate_pipeline` for each of several pipelines (prompt A against B, model A against
    B), each with its own output; the same labels and overrides for all."""
    return [
        evaluate_pipeline(
            p,
            labels,
            overrides,
            labels_table=labels_table,
            min_accuracy=min_accuracy,
            store=store,
        )
        for p in paths
    ]


def _reader(path: str | Path, overrides: Overrides) -> LedgerReader:
    from .ledger import open_reader
    from .outputs import open_output

    config = load_pipeline(path, overrides)
    output = open_output(config.output, config.table)
    return open_reader(output.ledger_path, config.table, key=config.source.key)


def report_pipeline(
    path: str | Path,
    overrides: Overrides | None = None,
    out: str | Path | None = None,
    *,
    threshold: float = 0.8,
    max_rows: int = 200,
) -> Path:
    """Write the review page of the pipeline's output, as `extract report` does; its path.

    One self-contained HTML file (default `<output folder>/<table>_report.html`): runs, counts,
    error classes, fill rates, confidence, accuracy, and up to `max_rows` rows to check (failed,
    lowest value confidence below `threshold`, values not found in the text, wrong values)
    with their input text and the grounded values highlighted.
    """
    from .report import write_report

    config = load_pipeline(path, overrides or ())
    return write_report(
        config, None if out is None else Path(out), threshold=threshold, cap=max_rows
    )
