"""One evaluation: a validated pipeline's output against a labels file, stored beside it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from ..config import EvalConfig, PipelineConfig
from ..errors import ConfigError
from ..outputs import open_output
from ..schema import load_model
from ..trust.shape import Fields, model_shape
from .compare import Evaluated, compare
from .labels import column_paths, read_labels
from .match import default_mode, make_matcher
from .paths import FieldPath, field_paths
from .result import COMPARED, IN_ERRORS, MISSING, EvalResult
from .store import append, connect_output, read_output

__all__ = ["evaluate"]


def _fields(
    config: PipelineConfig, settings: EvalConfig, paths: dict[str, FieldPath], model: str
) -> None:
    """Check `eval.fields`: every key a field path, every mode one that suits its field."""
    problems = []
    for path, options in settings.fields.items():
        spec = paths.get(path)
        where = f"{config.file}:eval.fields.{path}"
        if spec is None or spec.is_model:
            what = "a model: name its fields" if spec is not None else f"not a field of {model}"
            problems.append(f"{where}: {path!r} is {what}")
            continue
        try:
            make_matcher(_mode(spec, settings, path), spec.shape, spec.listed, options)
        except ValueError as e:
            problems.append(f"{where}: {e}")
    if problems:
        raise ConfigError("; ".join(problems), path=str(config.file), problems=problems)


def _mode(spec: FieldPath, settings: EvalConfig, path: str) -> str:
    """The field's mode: set in `eval.fields`, implied by the options given, or by its type."""
    options = settings.fields.get(path)
    if options is not None and options.mode is not None:
        return options.mode
    if options is not None and (options.tolerance is not None or options.relative is not None):
        return "numeric"
    if options is not None and options.threshold is not None:
        return "fuzzy"
    return default_mode(spec.shape, spec.listed)


def evaluate(
    config: PipelineConfig,
    labels: str | Path | None = None,
    *,
    labels_table: str | None = None,
    min_accuracy: float | None = None,
    store: bool = True,
) -> EvalResult:
    """Compare the output of `config`'s pipeline with a labels file and (with `store`) append
    the evaluation to the output's `<table>_eval` and `<table>_eval_rows`.

    `labels` defaults to the pipeline file's `eval.labels` (relative to its folder);
    `min_accuracy` to `eval.min_accuracy`. The result's `check()` raises below the minimum.
    """
    settings = config.evaluation or EvalConfig()
    if labels is None:
        if settings.labels is None:
            raise ConfigError(
                f"{config.file}: no labels to evaluate against: pass --labels FILE or set "
                "eval.labels in the pipeline file",
                path=str(config.file),
            )
        labels = config.base_dir / settings.labels
        labels_table = labels_table or settings.labels_table
    model = load_model(config.schema_ref, config.base_dir)
    top: Fields = model_shape(model)
    paths = field_paths(top)
    _fields(config, settings, paths, model.__name__)

    data = read_labels(labels, table=labels_table, key=config.source.key)
    if not data.columns:
        raise ConfigError(f"labels {data.label}: no field columns besides the key {data.key!r}")
    if not data.rows:
        raise ConfigError(f"labels {data.label}: no rows")
    fields = []
    for path, (column, inner) in column_paths(data, paths, model.__name__).items():
        spec = paths[path]
        matcher = make_matcher(
            _mode(spec, settings, path), spec.shape, spec.listed, settings.fields.get(path)
        )
        fields.append(Evaluated(spec, matcher, column, inner))

    output = open_output(config.output, config.table)
    ledger = output.ledger_path
    columns = list(dict.fromkeys(f.spec.parts[0] for f in fields))
    con = connect_output(ledger, write=store)
    try:
        found = read_output(
            con,
            ledger,
            config.table,
            key=config.source.key,
            keys=[k for k, _ in data.rows],
            columns=columns,
        )
        results, values, calibration = compare(fields, data, found, top)
        statuses = {v.key: v.status for v in values}
        result = EvalResult(
            pipeline=config.name,
            file=config.file,
            table=config.table,
            labels=data.label,
            run_id=found.run_id,
            evaluated_at=dt.datetime.now(dt.UTC),
            rows=len(data.rows),
            compared=sum(s == COMPARED for s in statuses.values()),
            in_errors=sum(s == IN_ERRORS for s in statuses.values()),
            missing=sum(s == MISSING for s in statuses.values()),
            unlabelled=found.unlabelled,
            fields=results,
            values=values,
            calibration=calibration,
            min_accuracy=min_accuracy if min_accuracy is not None else settings.min_accuracy,
        )
        if store:
            append(con, ledger, result)
    finally:
        con.close()
    return result
