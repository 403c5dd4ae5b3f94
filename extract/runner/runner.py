"""A run from start to end: bring the provider's endpoint up, open the ledger, drive the row loop,
record the run, write the output, bring the endpoint down.

`run(pipeline)` is the one run path: `extract run`, `extract.run_pipeline` and the tests all go
through it. A `transport` given by the caller (`FakeTransport` in tests) replaces the provider's
endpoint; otherwise the provider is started and an HttpTransport talks to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import signal
from collections.abc import AsyncIterator, Collection, Iterator
from contextlib import AsyncExitStack, ExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, ExtractError
from ..ledger import LedgerWriter
from ..ledger.store import Ledger
from ..pipeline import Pipeline, PreparedRow
from ..providers.base import Endpoint
from ..results import RunSummary, new_run_id
from ..transport.base import Transport
from .budget import Budget
from .concurrency import START_SLOTS, AdaptiveLimit
from .loop import Processor, Progress, RowLoop
from .rows import row_worker

if TYPE_CHECKING:
    from ..engines import Engine

__all__ = ["run"]

HEADERS = {"X-Title": "extract"}


def _new_summary(pipeline: Pipeline, limit: int | None) -> RunSummary:
    cfg = pipeline.config
    run_id = new_run_id()
    return RunSummary(
        run_id=run_id,
        pipeline=cfg.name,
        config_hash=cfg.config_hash(),
        schema_hash=pipeline.compiled.hash,
        model=pipeline.provider.model_name(),
        output=str(cfg.output.path),
        table=cfg.table,
        started_at=dt.datetime.now(dt.UTC),
        rows_total=pipeline.source.count(limit),
    )


@asynccontextmanager
async def _transports(
    pipeline: Pipeline,
    given: Transport | None,
    endpoint: Endpoint,
    ledger: Ledger,
    writer: LedgerWriter,
    run_id: str,
    wait: bool,
) -> AsyncIterator[tuple[Transport, Transport | None]]:
    """The transport rows are sent through, and the one re-asks go through when it differs
    (run.mode batch with batch_reask: sync)."""
    cfg = pipeline.config
    async with AsyncExitStack() as stack:
        if given is not None:
            sync: Transport = await stack.enter_async_context(given)
        else:
            from ..transport.http import HttpTransport

            sync = await stack.enter_async_context(
                HttpTransport(
                    endpoint.base_url,
                    api_key=endpoint.api_key,
                    timeout_s=cfg.model.timeout_s,
                    connect_timeout_s=cfg.model.connect_timeout_s,
                    max_connections=cfg.run.concurrency,
                    headers=HEADERS,
                    stream=cfg.model.stream,
                    idle_timeout_s=cfg.model.idle_timeout_s,
                )
            )
        if cfg.run.mode == "sync":
            yield sync, None
            return
        from ..batch import BatchClient, BatchStore, BatchTransport

        run = cfg.run
        client = BatchClient(
            cfg.model.batch_url or endpoint.base_url.rstrip("/") + "/batches",
            api_key=endpoint.api_key,
            timeout_s=cfg.model.timeout_s,
            headers=HEADERS,
        )
        batches = BatchTransport(
            client,
            BatchStore(ledger.con, cfg.table),
            writer.in_thread,
            model=pipeline.provider.model_name(),
            run_id=run_id,
            max_requests=run.batch_max_requests,
            max_bytes=int(run.batch_max_mb * 1e6),
            poll_s=run.batch_poll_s,
            wait=wait,
            max_retries=run.max_retries,
            backoff_s=run.backoff_s,
            fallback=sync if run.batch_fallback == "sync" else None,
            prices=pipeline.provider.prices(),
            discount=cfg.model.batch_discount,
        )
        await stack.enter_async_context(batches)
        yield batches, (sync if run.batch_reask == "sync" else None)


def _trust_warnings(pipeline: Pipeline) -> list[str]:
    """What the run should say once about confidence it could not give."""
    cfg, assessor = pipeline.config, pipeline.assessor
    if cfg.run.confidence and not pipeline.provider.logprobs:
        return [
            f"run.confidence: provider {pipeline.provider.name!r} gives no token log-probabilities;"
            " _confidence is null"
        ]
    if assessor.without_logprobs:
        return [
            f"run.confidence: {assessor.without_logprobs} answer(s) came without usable token "
            "log-probabilities (the endpoint ignored `logprobs`, or they do not spell the "
            "answer); their _confidence is null"
        ]
    return []


def _collected(ledger: Ledger, table: str, sent: Transport | None, summary: RunSummary) -> None:
    """Mark the batches every line of which reached its row (now committed): later runs need
    not load them. Only after a run that ended on its own: an interrupted one may not have
    handed every line to its row."""
    from ..batch.transport import BatchTransport

    if isinstance(sent, BatchTransport) and summary.status in ("completed", "pending"):
        from ..batch.store import BatchStore

        BatchStore(ledger.con, table).collected(sent.collectable())


def run(
    pipeline: Pipeline,
    *,
    limit: int | None = None,
    progress: Progress | None = None,
    full_refresh: bool = False,
    retry_errors: bool = False,
    transport: Transport | None = None,
    wait: bool = False,
    only: Collection[Any] | None = None,
    engine: Engine | None = None,
) -> RunSummary:
    """Run a prepared pipeline to its end and return its summary.

    Raises RunStopped (401/402) or BudgetExceeded after recording every row that finished, and
    SinkError when the output cannot be written (what was journaled lands on the next run). After
    SIGTERM the rows in flight get `run.grace_s` to finish, and the summary says `interrupted`. In
    run.mode batch, rows whose batch is still running are counted in `rows_pending` (with
    `wait`, the run polls until there are none).

    `engine` (default: the one run.engine names; none for `local`) reads the rows and requests
    them elsewhere (extract/engines/); this process still settles rows from the ledger and the
    cache and is the only one that writes.
    """
    cfg = pipeline.config
    if engine is None and cfg.run.engine != "local":
        from ..engines import open_engine

        engine = open_engine(cfg)
    if engine is not None and (transport is not None or cfg.run.mode != "sync"):
        raise ConfigError(
            f"{cfg.file}:run.engine: {cfg.run.engine} runs run.mode sync against the provider's"
            " endpoint only (no run.mode batch, no transport given from Python)"
        )
    provider = pipeline.provider
    summary = _new_summary(pipeline, limit)
    if only is not None:
        summary.rows_total = len(only)
    with ExitStack() as stack:
        if transport is None:
            endpoint = stack.enter_context(provider.start())
        else:
            endpoint = Endpoint(cfg.model.base_url, None)
        ledger = pipeline.open_ledger()
        stack.callback(ledger.close)
        ledger.replace_cache = full_refresh
        ledger.save_run(summary)
        if cfg.run.mode == "batch":
            # rows wait for their batch, not for a connection: enough to fill a few batches
            requests = AdaptiveLimit(4 * cfg.run.batch_max_requests)
            rows = AdaptiveLimit(requests.maximum)
        else:
            most = min(cfg.run.concurrency, endpoint.max_concurrency or 1 << 30)
            requests = AdaptiveLimit(most, start=START_SLOTS)
            # rows in flight: those sending, and as many again waiting out a backoff
            rows = AdaptiveLimit(2 * requests.maximum)
        writer = LedgerWriter(ledger, cfg.run.batch_size)
        budget = Budget(
            cfg.run.budget_usd,
            provider.prices(),
            len(json.dumps(pipeline.compiled.response_format)),
        )
        loop: RowLoop | None = None
        ended: ExtractError | None = None
        sent: Transport | None = None
        terms = 0

        def on_sigterm() -> None:
            # the first SIGTERM drains (an orchestrator's stop), a second one cancels at once
            nonlocal terms
            terms += 1
            if loop is None:
                return
            if terms == 1:
                loop.drain()
                asyncio.get_running_loop().call_later(cfg.run.grace_s, loop.cancel_rows)
            else:
                loop.cancel_rows()

        def row_loop(
            worker: Processor, batches: Iterator[list[PreparedRow]] | None = None
        ) -> RowLoop:
            return RowLoop(
                pipeline,
                worker,
                ledger,
                writer,
                summary,
                rows,
                progress,
                full_refresh=full_refresh,
                retry_errors=retry_errors,
                only=only,
                batches=batches,
            )

        async def go() -> None:
            nonlocal loop, sent
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, on_sigterm)
            if engine is not None:
                async with engine.workers(
                    pipeline, endpoint, run_id=summary.run_id, concurrency=requests.maximum
                ) as remote:
                    loop = row_loop(remote, engine.rows(pipeline, limit))
                    await loop.run(limit)
                return
            async with _transports(
                pipeline, transport, endpoint, ledger, writer, summary.run_id, wait
            ) as (t, reask):
                sent = t
                worker = row_worker(
                    cfg,
                    pipeline.compiled,
                    pipeline.request_template(),
                    pipeline.assessor,
                    t,
                    budget=budget,
                    limit=requests,
                    reasoning_details=provider.reasoning_details,
                    run_id=summary.run_id,
                    reask_transport=reask,
                    merger=pipeline.merger,
                )
                loop = row_loop(worker)
                await loop.run(limit)

        try:
            asyncio.run(go())
        except KeyboardInterrupt:
            summary.status = "interrupted"
            summary.stop_reason = "interrupted by the user"
            raise
        except ExtractError as e:
            # what ended the run on its way (an input that cannot be read, an engine that cannot
            # start): the run is recorded as failed, not completed
            ended = e
            raise
        finally:
            stopped = loop.stopped if loop is not None else None
            if terms:
                summary.status = "interrupted"
                summary.stop_reason = "stopped by SIGTERM" + (
                    "" if terms == 1 else " (twice: rows in flight were cancelled)"
                )
            elif stopped is not None:
                summary.status, summary.stop_reason = "stopped", str(stopped)
            elif writer.fatal is not None:
                summary.status, summary.stop_reason = "failed", str(writer.fatal)
            elif ended is not None:
                summary.status, summary.stop_reason = "failed", str(ended)
            elif summary.status == "running":
                summary.status = "pending" if summary.rows_pending else "completed"
            summary.ended_at = dt.datetime.now(dt.UTC)
            summary.warnings.extend(_trust_warnings(pipeline))
            if writer.fatal is None:
                ledger.save_run(summary)
                if cfg.run.mode == "batch":
                    _collected(ledger, cfg.table, sent, summary)
        if writer.fatal is not None:
            raise writer.fatal
        pipeline.output.finish(ledger.con, pipeline.source.key)
    if stopped is not None:
        raise stopped
    return summary
