"""extract: turn messy text and images in tables into clean, typed tables with a language model.

The library behind the `extract` command. The flow, one typed value per arrow:
`load_pipeline` -> PipelineConfig -> `prepare` (Source, CompiledSchema, Prompt)
-> `run` -> RunSummary.
"""

from __future__ import annotations

from .client import ChatClient, Completion, Usage
from .columns import Column, model_columns, to_frame
from .config import PipelineConfig, load_pipeline
from .errors import (
    APIError,
    BudgetExceeded,
    ConfigError,
    ConnectionFailed,
    ContentError,
    ExtractError,
    InvalidOutput,
    MalformedOutput,
    RateLimited,
    Refusal,
    RowInputError,
    RowRejected,
    RunStopped,
    SchemaError,
    ServerError,
    SinkError,
    SourceError,
    TransientError,
    TruncatedOutput,
    UpstreamError,
)
from .pipeline import Pipeline, prepare
from .results import RowResult, RunSummary
from .runner import run
from .schema import CompiledSchema, compile_schema, load_model

__all__ = [
    "APIError",
    "BudgetExceeded",
    "ChatClient",
    "Column",
    "CompiledSchema",
    "Completion",
    "ConfigError",
    "ConnectionFailed",
    "ContentError",
    "ExtractError",
    "InvalidOutput",
    "MalformedOutput",
    "Pipeline",
    "PipelineConfig",
    "RateLimited",
    "Refusal",
    "RowInputError",
    "RowRejected",
    "RowResult",
    "RunStopped",
    "RunSummary",
    "SchemaError",
    "ServerError",
    "SinkError",
    "SourceError",
    "TransientError",
    "TruncatedOutput",
    "UpstreamError",
    "Usage",
    "compile_schema",
    "load_model",
    "load_pipeline",
    "model_columns",
    "prepare",
    "run",
    "to_frame",
]
