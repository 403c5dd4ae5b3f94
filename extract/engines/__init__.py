"""Where a run's rows are requested (`run.engine`).

    local        this process: runner.run's own RowWorker (the default; no module here)
    ray/         Ray actors, the rows sharded by a stable hash of their key (`run.engine: ray`,
                 the `ray` extra)

An engine reads the source's rows and requests them elsewhere; the process that calls
`runner.run` stays the driver either way: it settles rows from the ledger and the cache before
any is sent, and it is the only one that writes (the same tables as a local run).
"""

from __future__ import annotations

import importlib
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..config import PipelineConfig
    from ..pipeline import Pipeline, PreparedRow
    from ..providers.base import Endpoint
    from ..runner.loop import Processor

__all__ = ["Engine", "open_engine", "with_engine"]


class Engine(Protocol):
    """Rows read and requested away from the driver."""

    def workers(
        self, pipeline: Pipeline, endpoint: Endpoint, *, run_id: str, concurrency: int
    ) -> AbstractAsyncContextManager[Processor]:
        """The workers of one run, `concurrency` requests in flight across all of them, as
        one Processor the row loop hands each unsettled row to."""
        ...

    def rows(self, pipeline: Pipeline, limit: int | None) -> Iterator[list[PreparedRow]]:
        """The pipeline's source rows (up to `limit`), prepared; inside `workers` only."""
        ...


def open_engine(config: PipelineConfig) -> Engine:
    """The engine `run.engine` names (not `local`); EngineUnavailable when it cannot run here."""
    if config.run.engine == "ray":
        from .ray import RayEngine

        return RayEngine(config.run.ray_address, workers=config.run.ray_workers)
    from ..errors import ConfigError

    raise ConfigError(f"{config.file}:run.engine: no engine {config.run.engine!r} to open")


def with_engine(
    config: PipelineConfig, engine: str | None = None, address: str | None = None
) -> PipelineConfig:
    """`config` with run.engine and run.ray_address replaced where given (--engine, --address);
    EngineUnavailable when the engine it names cannot be imported."""
    from ..errors import ConfigError

    changes: dict[str, str] = {}
    if engine is not None:
        if engine not in ("local", "ray"):
            raise ConfigError(f"engine {engine!r}: expected 'local' or 'ray'")
        changes["engine"] = engine
    if address is not None:
        changes["ray_address"] = address
    run = config.run.model_copy(update=changes)
    if address is not None and run.engine != "ray":
        raise ConfigError("--address names a Ray cluster: it needs --engine ray (run.engine: ray)")
    if run.engine == "ray":
        # EngineUnavailable before the run starts, when the extra is not installed
        importlib.import_module(f"{__name__}.ray")
    return config.model_copy(update={"run": run})
