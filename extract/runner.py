"""The run: stream rows, skip what the ledger already holds, keep up to `run.concurrency` requests
in flight, and make every finished row durable as it completes.

Per row there are two loops, each with its own bound:
- transport retry (retry.py): the identical request again after 429/5xx/timeouts/drops;
- re-ask (here): after unusable output, a *changed* request: the first turn, the bad answer and
  what was wrong with it. Only the latest bad answer is sent, so the conversation stays bounded.
Every row ends as exactly one RowResult (ok or failed), recorded once; a row is never lost, and an
answer can only reach the row whose request it answers because each task owns its row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from .client import BodyEncoder, ChatClient, Completion, Usage
from .errors import (
    APIError,
    BudgetExceeded,
    ContentError,
    ExtractError,
    RateLimited,
    Refusal,
    RunStopped,
    TruncatedOutput,
)
from .ledger import Known, Ledger, classify
from .limiter import AdaptiveLimit
from .pipeline import Pipeline, PreparedRow
from .prompt import Message
from .results import RowResult, RunSummary
from .retry import with_retries
from .sinks import export
from .validate import parse_completion

__all__ = ["run"]

#: characters of a bad answer sent back in a re-ask; longer ones are cut (bounded conversation)
REASK_ANSWER_CHARS = 8000
#: max_tokens grows by this factor after a truncated answer, up to MAX_TOKENS_CAP
TRUNCATION_GROWTH = 2
MAX_TOKENS_CAP = 32768
#: journaled rows are folded into the tables at least this often (seconds)
FLUSH_SECONDS = 1.0

Progress = Callable[[RunSummary], None]


def _reask(first_turn: list[Message], completion: Completion, error: ContentError) -> list[Message]:
    """The first turn, the bad answer, and what was wrong with it: a changed, bounded request."""
    answer = (error.raw or completion.content or "")[:REASK_ANSWER_CHARS]
    assistant: Message = {"role": "assistant", "content": answer}
    if completion.reasoning_details:
        # OpenRouter: hand the model its own reasoning back unchanged so it can continue from it.
        assistant["reasoning_details"] = completion.reasoning_details
    if isinstance(error, TruncatedOutput):
        problem = (
            "Your answer was cut off before it was complete. Reply again with only the JSON "
            "object, complete and concise."
        )
    else:
        details = getattr(error, "errors", None) or [str(error)]
        problem = (
            "Your answer was not valid for the required JSON schema:\n- "
            + "\n- ".join(details[:20])
            + "\nReply with only the corrected JSON object."
        )
    return [*first_turn, assistant, {"role": "user", "content": problem}]


class _Run:
    def __init__(
        self,
        pipeline: Pipeline,
        client: ChatClient,
        ledger: Ledger,
        summary: RunSummary,
        progress: Progress | None,
        *,
        full_refresh: bool,
        retry_errors: bool,
    ):
        self.p = pipeline
        self.cfg = pipeline.config
        self.client = client
        self.ledger = ledger
        self.summary = summary
        self.progress = progress
        self.full_refresh = full_refresh
        self.retry_errors = retry_errors
        self.bodies = BodyEncoder(pipeline.request_template())
        self.prices = self.cfg.model.prices()
        self.schema_chars = len(json.dumps(pipeline.compiled.response_format))
        self.last_flush = time.monotonic()
        #: the ledger's writer: DuckDB work runs here, one statement at a time, off the loop
        self.db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="extract-ledger")
        self.writes: set[asyncio.Future[None]] = set()
        self.sync_pending = False
        self.fatal: BaseException | None = None
        self.stopped: RunStopped | BudgetExceeded | None = None
        self.spent = 0.0
        #: rows in flight: run.concurrency at most, fewer while the API answers 429
        self.limit = AdaptiveLimit(self.cfg.run.concurrency)
        self.reserved = 0.0

    # ------------------------------------------------------------------ one request

    def _reserve(self, body_chars: int, max_tokens: int | None) -> float:
        """The most a request can cost, from its size and max_tokens (for run.budget_usd)."""
        budget = self.cfg.run.budget_usd
        if budget is None or self.prices is None:
            return 0.0
        pin, pout = self.prices
        # About 4 characters a token in practice; 3 keeps the estimate on the safe side.
        estimate = ((body_chars + self.schema_chars) / 3 * pin + (max_tokens or 8192) * pout) / 1e6
        if self.spent + self.reserved + estimate > budget:
            raise BudgetExceeded(
                f"stopped before passing the budget of ${budget:g}: ${self.spent:.4f} spent, "
                f"the next request could cost up to ${estimate:.4f}",
                budget_usd=budget,
                spent_usd=self.spent,
            )
        self.reserved += estimate
        return estimate

    def _fill_cost(self, usage: Usage) -> None:
        if usage.cost_usd is None and self.prices is not None:
            pin, pout = self.prices
            usage.cost_usd = (usage.prompt_tokens * pin + usage.completion_tokens * pout) / 1e6

    async def _request(self, body: bytes, result: RowResult) -> Completion:
        """One HTTP request, counted, its 429s and successes fed to the adaptive limit."""
        result.requests += 1
        self.summary.requests += 1
        try:
            completion = await self.client.complete(body)
        except RateLimited:
            self.limit.rate_limited()
            raise
        self.limit.succeeded()
        self._fill_cost(completion.usage)
        self.spent += completion.usage.cost_usd or 0.0
        return completion

    async def _send(
        self, body: bytes, chars: int, max_tokens: int | None, result: RowResult
    ) -> Completion:
        reserve = self._reserve(chars, max_tokens)
        try:
            return await with_retries(
                lambda: self._request(body, result),
                self.cfg.run.max_retries,
                initial=self.cfg.run.backoff_s,
            )
        finally:
            self.reserved -= reserve

    # ------------------------------------------------------------------ one row

    async def _process(self, row: PreparedRow) -> RowResult:
        assert row.messages is not None and row.request_hash is not None
        result = RowResult(
            key=row.key,
            prompt_hash=row.prompt_hash,
            request_hash=row.request_hash,
            run_id=self.summary.run_id,
            replaces=row.exists,
        )
        first_turn = messages = row.messages
        chars = row.chars
        started = time.perf_counter()
        max_tokens = self.cfg.model.max_tokens
        last: ExtractError | None = None
        try:
            for attempt in range(1, self.cfg.run.max_attempts + 1):
                result.attempts = attempt
                body = self.bodies.encode(messages, max_tokens)
                completion = await self._send(body, chars, max_tokens, result)
                result.usage.add(completion.usage)
                result.model = completion.model
                result.provider = completion.provider
                result.finish_reason = completion.finish_reason
                try:
                    result.instance = parse_completion(completion, self.p.compiled)
                    return result
                except Refusal as e:
                    last = e
                    break
                except ContentError as e:
                    last = e
                    messages = _reask(first_turn, completion, e)
                    chars = row.chars + len(messages[-2]["content"]) + len(messages[-1]["content"])
                    if isinstance(e, TruncatedOutput) and max_tokens is not None:
                        max_tokens = min(max_tokens * TRUNCATION_GROWTH, MAX_TOKENS_CAP)
        except (RunStopped, BudgetExceeded):
            raise
        except APIError as e:
            last = e
        finally:
            result.latency_ms = (time.perf_counter() - started) * 1000
            result.finished_at = dt.datetime.now(dt.UTC)
        assert last is not None
        result.error_class = type(last).__name__
        result.message = str(last)
        result.raw_output = getattr(last, "raw", None) or getattr(last, "body", None) or None
        return result

    async def _row_task(self, row: PreparedRow) -> None:
        try:
            try:
                result = await self._process(row)
            except (RunStopped, BudgetExceeded) as e:
                # The row is left for the next run: nothing about it is recorded.
                if self.stopped is None:
                    self.stopped = e
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # A bug of ours must not lose the row: it lands in the errors table with its trace.
                result = RowResult(
                    key=row.key,
                    prompt_hash=row.prompt_hash,
                    request_hash=row.request_hash or "",
                    run_id=self.summary.run_id,
                    error_class=f"InternalError.{type(e).__name__}",
                    message=f"{e}\n{traceback.format_exc(limit=5)}",
                )
            self._accept(result)
        finally:
            self.limit.release()

    # ------------------------------------------------------------------ bookkeeping

    def _accept(self, result: RowResult) -> None:
        s = self.summary
        if result.from_cache:
            s.rows_cached += 1
        elif result.ok:
            s.rows_ok += 1
        else:
            s.rows_failed += 1
        if not result.from_cache:
            s.usage.add(result.usage)
        if self.fatal is not None:
            return
        try:
            self.ledger.record(result)
        except Exception as e:
            self.fatal = e
            return
        if not self.sync_pending:
            # One flush of the journal per event-loop turn, however many rows finished in it.
            self.sync_pending = True
            asyncio.get_running_loop().call_soon(self._sync)
        now = time.monotonic()
        if self.ledger.pending >= self.cfg.run.batch_size or now - self.last_flush >= FLUSH_SECONDS:
            self.last_flush = now
            self._write()
        if self.progress is not None:
            self.progress(s)

    def _sync(self) -> None:
        self.sync_pending = False
        try:
            self.ledger.sync()
        except Exception as e:
            self.fatal = e

    def _write(self) -> None:
        """Commit the buffered rows in the writer thread, off the event loop: DuckDB releases
        the GIL while it works, so replies keep being read and new requests sent meanwhile."""
        if self.fatal is not None:
            return  # what is not committed stays journaled for the next run
        self._sync()
        taken = self.ledger.take()
        if taken is None:
            return
        future = asyncio.get_running_loop().run_in_executor(self.db, self.ledger.commit, *taken)
        self.writes.add(future)
        future.add_done_callback(self._written)

    def _written(self, future: asyncio.Future[None]) -> None:
        self.writes.discard(future)
        if not future.cancelled() and future.exception() is not None and self.fatal is None:
            self.fatal = future.exception()

    async def _drain(self, most: int) -> None:
        """Wait until at most `most` writes are under way (back-pressure on a slow disk)."""
        while len(self.writes) > most:
            await asyncio.wait(set(self.writes), return_when=asyncio.FIRST_COMPLETED)

    async def main(self, limit: int | None) -> None:
        tasks: set[asyncio.Task[None]] = set()
        fresh = Known()
        try:
            for batch in self.p.rows(limit):
                if self.full_refresh or self.ledger.empty:
                    states = [fresh] * len(batch)
                else:
                    # In the writer thread: the ledger's connection has one user at a time.
                    states = await asyncio.get_running_loop().run_in_executor(
                        self.db,
                        self.ledger.lookup,
                        [r.key for r in batch],
                        [r.request_hash for r in batch],
                    )
                await self._drain(2)
                for row, known in zip(batch, states, strict=True):
                    action = classify(
                        known, full_refresh=self.full_refresh, retry_errors=self.retry_errors
                    )
                    row.exists = known.exists or self.full_refresh
                    if action in ("skip", "failed"):
                        self.summary.rows_skipped += 1
                        self.summary.rows_failed_before += action == "failed"
                        continue
                    if action == "cached" and known.cached is not None:
                        known.cached.prompt_hash = row.prompt_hash
                        self._accept(known.cached)
                        continue
                    if row.error is not None:
                        self._accept(
                            RowResult(
                                key=row.key,
                                prompt_hash="",
                                run_id=self.summary.run_id,
                                error_class=type(row.error).__name__,
                                message=str(row.error),
                                replaces=row.exists,
                            )
                        )
                        continue
                    await self.limit.acquire()
                    if self.stopped is not None or self.fatal is not None:
                        self.limit.release()
                        return
                    task = asyncio.create_task(self._row_task(row))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
                if self.stopped is not None or self.fatal is not None:
                    return
            if tasks:
                await asyncio.wait(set(tasks))
        finally:
            if tasks:
                # Stopping (401/402, budget) or interrupted: let in-flight rows end, then cancel.
                if self.stopped is None and self.fatal is None:
                    for task in tasks:
                        task.cancel()
                await asyncio.wait(set(tasks))
            self._write()
            await self._drain(0)


def run(
    pipeline: Pipeline,
    *,
    api_key: str | None,
    limit: int | None = None,
    progress: Progress | None = None,
    full_refresh: bool = False,
    retry_errors: bool = False,
) -> RunSummary:
    """Run a prepared pipeline to its end.

    Raises RunStopped (401/402) or BudgetExceeded after recording every row that finished.
    """
    cfg = pipeline.config
    compiled = pipeline.compiled
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    summary = RunSummary(
        run_id=run_id,
        pipeline=cfg.name,
        config_hash=pipeline.config_hash or cfg.config_hash(),
        schema_hash=compiled.hash,
        model=cfg.model.name,
        output=str(cfg.output.path),
        table=cfg.table,
        started_at=dt.datetime.now(dt.UTC),
        rows_total=pipeline.source.count(limit),
    )
    ledger = pipeline.open_ledger()
    state: list[_Run] = []

    async def go() -> None:
        async with ChatClient(
            cfg.model.base_url,
            api_key=api_key,
            timeout_s=cfg.model.timeout_s,
            max_connections=cfg.run.concurrency,
            headers={"X-Title": "extract"},
        ) as client:
            r = _Run(
                pipeline,
                client,
                ledger,
                summary,
                progress,
                full_refresh=full_refresh,
                retry_errors=retry_errors,
            )
            state.append(r)
            try:
                await r.main(limit)
            finally:
                r.db.shutdown(wait=True)

    try:
        ledger.replace_cache = full_refresh
        ledger.start_run(summary)
        try:
            asyncio.run(go())
        except KeyboardInterrupt:
            summary.status = "interrupted"
            summary.stop_reason = "interrupted by the user"
            raise
        finally:
            r = state[0] if state else None
            if r is not None and r.stopped is not None:
                summary.status = "stopped"
                summary.stop_reason = str(r.stopped)
            elif r is not None and r.fatal is not None:
                summary.status = "failed"
                summary.stop_reason = str(r.fatal)
            elif summary.status == "running":
                summary.status = "completed"
            summary.ended_at = dt.datetime.now(dt.UTC)
            if r is None or r.fatal is None:
                ledger.finish_run(summary)
        if cfg.output.type != "duckdb":
            export(ledger.con, cfg.output.type, cfg.output.path, cfg.table, pipeline.source.key)
    finally:
        ledger.close()
    if state and state[0].fatal is not None:
        raise state[0].fatal
    if state and state[0].stopped is not None:
        raise state[0].stopped
    return summary
