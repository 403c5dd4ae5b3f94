"""`ShardWorker`: one shard's rows, requested in a Ray actor by the same RowWorker (client,
retry, re-ask, validation, confidence, grounding) as a local run.

The actor gets the pipeline's config, the request template and the endpoint's URL, never the
API key: it reads the key from its own environment (`model.api_key_env`), which a local Ray
instance inherits from the driver and a cluster's nodes are given (README, "Past one machine").
A row that stops the run (401/402, the budget) comes back as a `Stop`, raised again on the
driver, because exceptions that take keyword arguments do not survive pickling.
"""

from __future__ import annotations

import asyncio
import json
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ...errors import BudgetExceeded, RunStopped
from ...providers import get_provider
from ...runner.budget import Budget
from ...runner.concurrency import START_SLOTS, AdaptiveLimit
from ...runner.rows import RowWorker, row_worker
from ...schema import compile_schema, load_model
from ...split import Merger
from ...transport.http import HttpTransport
from ...trust.assess import Assessor
from ...trust.shape import model_shape

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from ...config import PipelineConfig
    from ...pipeline import PreparedRow
    from ...results import RowResult

__all__ = ["ShardWorker", "Stop"]

HEADERS = {"X-Title": "extract"}
#: how long the answers that finish soon after another wait to go back with it
YIELD_S = 0.005


@dataclass(frozen=True)
class Stop:
    """A row that stopped the run (its error, as plain values) and the requests it sent."""

    kind: str
    message: str
    requests: int
    status: int | None = None
    body: str = ""
    budget_usd: float = 0.0
    spent_usd: float = 0.0

    @classmethod
    def of(cls, e: RunStopped | BudgetExceeded) -> Stop:
        # the request a 401/402 answered was sent; the budget stops a row before its request
        # (the row's earlier attempts, if any, go uncounted)
        if isinstance(e, RunStopped):
            return cls("RunStopped", str(e), 1, status=e.status, body=e.body)
        return cls("BudgetExceeded", str(e), 0, budget_usd=e.budget_usd, spent_usd=e.spent_usd)

    def error(self) -> RunStopped | BudgetExceeded:
        if self.kind == "RunStopped":
            return RunStopped(self.message, status=self.status, body=self.body)
        return BudgetExceeded(self.message, budget_usd=self.budget_usd, spent_usd=self.spent_usd)


class ShardWorker:
    """The rows of one shard (a Ray actor: `ray.remote(ShardWorker)`), `concurrency` requests
    in flight at most; `shards` actors share run.budget_usd and run.rate_limit evenly."""

    def __init__(
        self,
        config: PipelineConfig,
        template: dict[str, Any],
        base_url: str,
        *,
        concurrency: int,
        shards: int,
        run_id: str,
    ):
        self.config = config
        self.template = template
        self.base_url = base_url
        self.concurrency = concurrency
        self.shards = shards
        self.run_id = run_id
        provider = get_provider(config)
        self.reasoning_details = provider.reasoning_details
        # the schema file is loaded here again: a model class cannot travel by value
        self.compiled = compile_schema(
            load_model(config.schema_ref, config.base_dir), string_lengths=provider.string_lengths
        )
        self.assessor = Assessor(
            config,
            self.compiled,
            logprobs=provider.logprobs,
            before_grammar=provider.logprobs_before_grammar,
        )
        # a split row's parts come prepared from the driver; their answers are merged here
        self.merger = Merger(
            model_shape(self.compiled.model),
            config.split.merge,
            where=f"{config.file}:split.merge",
            model=self.compiled.model.__name__,
        )
        budget = config.run.budget_usd
        self.budget = Budget(
            None if budget is None else budget / shards,
            provider.prices(),
            len(json.dumps(self.compiled.response_format)),
        )
        name = config.model.api_key_env
        self.api_key = os.environ.get(name) if name else None
        self._stack = AsyncExitStack()
        self._worker: RowWorker | None = None
        self._opening = asyncio.Lock()

    def ready(self) -> tuple[int, str | None]:
        """This actor's process id, and what keeps it from working (None: nothing)."""
        name = self.config.model.api_key_env
        if name and self.api_key is None:
            return os.getpid(), (
                f"{self.config.file}:model.api_key_env: environment variable {name} is not set"
                f" on the Ray worker of node {os.uname().nodename}; set it on every node"
            )
        return os.getpid(), None

    async def _open(self) -> RowWorker:
        # inside the actor's event loop, which its first call runs on
        transport = await self._stack.enter_async_context(
            HttpTransport(
                self.base_url,
                api_key=self.api_key,
                timeout_s=self.config.model.timeout_s,
                connect_timeout_s=self.config.model.connect_timeout_s,
                max_connections=self.concurrency,
                headers=HEADERS,
                stream=self.config.model.stream,
                idle_timeout_s=self.config.model.idle_timeout_s,
            )
        )
        return row_worker(
            self.config,
            self.compiled,
            self.template,
            self.assessor,
            transport,
            budget=self.budget,
            limit=AdaptiveLimit(self.concurrency, start=START_SLOTS),
            run_id=self.run_id,
            reasoning_details=self.reasoning_details,
            merger=self.merger,
            share=self.shards,
        )

    async def process(self, row: PreparedRow) -> RowResult | Stop:
        """The row's RowResult, or the Stop it ended the run with."""
        if self._worker is None:
            # one RowWorker (one limit, one connection pool) for every call of this actor
            async with self._opening:
                if self._worker is None:
                    self._worker = await self._open()
        try:
            return await self._worker.process(row)
        except (RunStopped, BudgetExceeded) as e:
            return Stop.of(e)

    async def process_many(
        self, rows: list[PreparedRow]
    ) -> AsyncIterator[list[tuple[int, RowResult | Stop]]]:
        """Each row's answer (its index in `rows`, and the RowResult or Stop), streamed in
        groups as they finish (a Ray streaming generator): those done within YIELD_S of the
        first of a group go together."""
        tasks = {asyncio.ensure_future(self._indexed(i, row)) for i, row in enumerate(rows)}
        try:
            while tasks:
                done, tasks = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                if tasks:
                    more, tasks = await asyncio.wait(tasks, timeout=YIELD_S)
                    done |= more
                yield [t.result() for t in done]
        finally:
            for task in tasks:
                task.cancel()

    async def _indexed(self, i: int, row: PreparedRow) -> tuple[int, RowResult | Stop]:
        return i, await self.process(row)

    async def close(self) -> None:
        """Close the connections (the driver calls it once the run's rows are done)."""
        await self._stack.aclose()
        self._worker = None
