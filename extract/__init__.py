"""extract: turn messy text and images in tables into clean, typed tables with a language model.

The library behind the `extract` command. The flow, one typed value per arrow:

    pipelines/NAME.yaml -> config.PipelineConfig -> pipeline.prepare: providers/ (where requests
    go), sources/ (Arrow batches), schema/ (strict response_format, typed columns), prompt
    -> runner.run: transport/ (HTTP, retry) -> validate (instance, or a re-ask) -> ledger/
    (journal, typed tables) -> outputs/ -> results.RunSummary

`run_pipeline(path)` does all of it, as `extract run` does. Names are imported on first use, so
`import extract` is cheap.
"""

from __future__ import annotations

import typing

from .errors import (
    AccuracyBelowMinimum,
    APIError,
    BatchPending,
    BudgetExceeded,
    ConfigError,
    ConnectionFailed,
    ContentError,
    DocumentError,
    EngineUnavailable,
    ExitCode,
    ExtractError,
    InputTooLong,
    InvalidOutput,
    MalformedOutput,
    MergeFailed,
    RateLimited,
    Refusal,
    RepeatedFailure,
    RowInputError,
    RowRejected,
    RunStopped,
    SchemaError,
    ServerError,
    SinkError,
    SourceError,
    TransientError,
    TruncatedOutput,
    Ungrounded,
    UpstreamError,
    WorkerLost,
)
from .lazy import lazy_exports as _lazy_exports

if typing.TYPE_CHECKING:
    from .api import (
        batches_table,
        errors_table,
        evaluate_pipeline,
        evaluate_pipelines,
        open_pipeline,
        plan_pipeline,
        replay_pipeline,
        run_pipeline,
        runs_table,
    )
    from .config import PipelineConfig, load_pipeline
    from .evaluate import EvalResult
    from .pipeline import Pipeline, prepare
    from .providers import register_provider
    from .providers.base import Endpoint, Provider
    from .results import RowResult, RunSummary
    from .runner import run
    from .schema import Column, CompiledSchema, compile_schema, load_model, model_columns
    from .sources import Source
    from .transport import Completion, Transport, Usage

__all__ = [
    "APIError",
    "AccuracyBelowMinimum",
    "BatchPending",
    "BudgetExceeded",
    "Column",
    "CompiledSchema",
    "Completion",
    "ConfigError",
    "ConnectionFailed",
    "ContentError",
    "DocumentError",
    "Endpoint",
    "EngineUnavailable",
    "EvalResult",
    "ExitCode",
    "ExtractError",
    "InputTooLong",
    "InvalidOutput",
    "MalformedOutput",
    "MergeFailed",
    "Pipeline",
    "PipelineConfig",
    "Provider",
    "RateLimited",
    "Refusal",
    "RepeatedFailure",
    "RowInputError",
    "RowRejected",
    "RowResult",
    "RunStopped",
    "RunSummary",
    "SchemaError",
    "ServerError",
    "SinkError",
    "Source",
    "SourceError",
    "TransientError",
    "Transport",
    "TruncatedOutput",
    "Ungrounded",
    "UpstreamError",
    "Usage",
    "WorkerLost",
    "batches_table",
    "compile_schema",
    "errors_table",
    "evaluate_pipeline",
    "evaluate_pipelines",
    "load_model",
    "load_pipeline",
    "model_columns",
    "open_pipeline",
    "plan_pipeline",
    "prepare",
    "register_provider",
    "replay_pipeline",
    "report_pipeline",
    "run",
    "run_pipeline",
    "runs_table",
]

__getattr__ = _lazy_exports(
    __name__,
    {
        "batches_table": ".api",
        "errors_table": ".api",
        "evaluate_pipeline": ".api",
        "evaluate_pipelines": ".api",
        "open_pipeline": ".api",
        "plan_pipeline": ".api",
        "replay_pipeline": ".api",
        "report_pipeline": ".api",
        "run_pipeline": ".api",
        "runs_table": ".api",
        "PipelineConfig": ".config",
        "load_pipeline": ".config",
        "EvalResult": ".evaluate",
        "Pipeline": ".pipeline",
        "prepare": ".pipeline",
        "register_provider": ".providers",
        "Endpoint": ".providers.base",
        "Provider": ".providers.base",
        "RowResult": ".results",
        "RunSummary": ".results",
        "run": ".runner",
        "Column": ".schema",
        "CompiledSchema": ".schema",
        "compile_schema": ".schema",
        "load_model": ".schema",
        "model_columns": ".schema",
        "Source": ".sources",
        "Completion": ".transport",
        "Transport": ".transport",
        "Usage": ".transport",
    },
)
