"""One row's request loop: send, validate, re-ask; it ends as exactly one RowResult.

Per row there are two loops, each with its own bound:
- transport retry (transport/retry.py): the identical request again after 429/5xx/timeouts/drops;
- re-ask (here, with `validate.reask`): after unusable output, a *changed* request. After a
  truncated answer `max_tokens` doubles (up to MAX_TOKENS_CAP).
401/402 and the budget stop the run: they propagate, and the row is left for the next run.

A row split into parts (a long input, extract/split/) runs that loop once per part, the parts at
once; the row's result is their merge (`split.combine`), or the first failed part's error.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from ..errors import (
    APIError,
    BatchPending,
    BudgetExceeded,
    ContentError,
    ExtractError,
    RateLimited,
    Refusal,
    RepeatedFailure,
    RunStopped,
    TruncatedOutput,
)
from ..pipeline import PreparedRow
from ..results import RowResult
from ..schema import CompiledSchema
from ..split import Merger, combine
from ..transport.base import CURRENT_ROW, BodyEncoder, Completion, Transport
from ..transport.retry import with_retries
from ..trust.assess import Assessor
from ..validate import parse_completion, reask
from .budget import Budget
from .concurrency import AdaptiveLimit
from .rate import RateLimit

if TYPE_CHECKING:
    from ..config import PipelineConfig

__all__ = ["Counter", "RowWorker", "row_worker"]

#: characters per token in the rate limit's estimate of a request's size
CHARS_PER_TOKEN = 4
#: max_tokens grows by this factor after a truncated answer, up to MAX_TOKENS_CAP
TRUNCATION_GROWTH = 2
MAX_TOKENS_CAP = 32768


@dataclass
class Counter:
    """Requests sent by the whole run (shared by every row)."""

    requests: int = 0


@dataclass(slots=True)
class _Answer:
    """A validated answer and what was learnt about it, kept aside while a row is re-asked."""

    instance: BaseModel | None = None
    model: str | None = None
    provider: str | None = None
    finish_reason: str | None = None
    confidence: dict[str, Any] | None = None
    min_confidence: float | None = None
    margins: dict[str, float] | None = None
    grounding: dict[str, Any] | None = None
    ungrounded: int | None = None
    batch_id: str | None = None
    generation_id: str | None = None
    system_fingerprint: str | None = None

    @classmethod
    def of(cls, r: RowResult) -> _Answer:
        return cls(*(getattr(r, name) for name in _ANSWER))

    def restore(self, r: RowResult) -> None:
        for name in _ANSWER:
            setattr(r, name, getattr(self, name))


_ANSWER = tuple(_Answer.__dataclass_fields__)


class RowWorker:
    """Turns one prepared row into a RowResult through the transport."""

    def __init__(
        self,
        transport: Transport,
        compiled: CompiledSchema,
        bodies: BodyEncoder,
        *,
        max_attempts: int,
        max_retries: int,
        backoff_s: float,
        max_tokens: int | None,
        budget: Budget,
        limit: AdaptiveLimit,
        reasoning_details: bool,
        run_id: str,
        assessor: Assessor,
        reask_transport: Transport | None = None,
        rate: RateLimit | None = None,
        merger: Merger | None = None,
    ):
        self.transport = transport
        #: where re-asks go when not through `transport` (run.mode batch, batch_reask: sync)
        self.reask_transport = reask_transport or transport
        self.rate = rate or RateLimit(None, None)
        self.compiled = compiled
        self.bodies = bodies
        self.max_attempts = max_attempts
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_tokens = max_tokens
        self.budget = budget
        self.limit = limit
        self.reasoning_details = reasoning_details
        self.run_id = run_id
        self.assessor = assessor
        #: merges a split row's parts' answers
        self.merger = merger
        self.sent = Counter()
        #: the 401/402 that stopped the run: no request is sent after it
        self.stopped: RunStopped | None = None

    async def _request(
        self, transport: Transport, body: bytes, result: RowResult, tokens: float
    ) -> Completion:
        """One HTTP request, counted, its 429s and successes fed to the adaptive limit."""
        await self.rate.acquire(tokens)
        # the slot is held only while the request is out: a row waiting out a backoff frees it
        await self.limit.acquire()
        try:
            if self.stopped is not None:  # 401/402 for another row while this one waited
                raise self.stopped
            result.requests += 1
            self.sent.requests += 1
            completion = await transport.complete(body)
        except RateLimited:
            self.limit.rate_limited()
            raise
        except RunStopped as e:
            self.stopped = e
            raise
        finally:
            self.limit.release()
        self.limit.succeeded()
        self.budget.spend(completion.usage)
        return completion

    async def _send(
        self, body: bytes, chars: int, max_tokens: int | None, result: RowResult, attempt: int
    ) -> Completion:
        transport = self.transport if attempt == 1 else self.reask_transport
        tokens = chars / CHARS_PER_TOKEN + (max_tokens or 0)
        reservation = self.budget.reserve(chars, max_tokens)
        try:
            return await with_retries(
                lambda: self._request(transport, body, result, tokens),
                self.max_retries,
                initial=self.backoff_s,
            )
        finally:
            self.budget.release(reservation)

    async def process(self, row: PreparedRow) -> RowResult:
        """Request the row until it validates, attempts run out, or it is refused (a split row:
        each of its parts so)."""
        if row.parts:
            return await self._split(row)
        return await self._one(row)

    async def _split(self, row: PreparedRow) -> RowResult:
        assert row.parts is not None and row.request_hash is not None and self.merger is not None
        started = time.perf_counter()
        parts = row.parts
        # a part answered before is taken from the cache (grounded again in its own text),
        # unless a value run.require_grounding asks for is not there
        cached = [
            p.cached
            if p.cached is not None and self.assessor.regrounded(p.cached, p.texts)
            else None
            for p in parts
        ]
        tasks = {
            i: asyncio.create_task(
                self._one(
                    PreparedRow(
                        row.key, p.messages, p.prompt_hash, p.request_hash, None, p.chars,
                        exists=row.exists, texts=p.texts,
                    )
                )
            )
            for i, p in enumerate(parts)
            if cached[i] is None
        }  # fmt: skip
        pending: set[asyncio.Task[RowResult]] = set(tasks.values())
        batched: BatchPending | None = None
        failed = False
        try:
            while pending and not failed:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    e = task.exception()
                    if isinstance(e, BatchPending):
                        # the other parts still go into their batches: a later run collects all
                        batched = e
                    elif e is not None:
                        raise e  # 401/402, the budget: the row is left for the next run
                    elif not task.result().ok:
                        failed = True
        finally:
            # a failed part fails the row: the parts still out would be paid for nothing
            for t in pending:
                t.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        if batched is not None and not failed:
            raise batched
        answers = [
            cached[i]
            if i not in tasks
            else tasks[i].result()
            if tasks[i].done() and not tasks[i].cancelled() and tasks[i].exception() is None
            else None
            for i in range(len(parts))
        ]
        result = self._result(row)
        combine(
            result,
            parts,
            answers,
            merger=self.merger,
            compiled=self.compiled,
            assessor=self.assessor,
            texts=row.texts,
        )
        result.latency_ms = (time.perf_counter() - started) * 1000
        result.finished_at = dt.datetime.now(dt.UTC)
        return result

    def _result(self, row: PreparedRow) -> RowResult:
        """The row's result, before anything is learnt of its answer."""
        assert row.request_hash is not None
        return RowResult(
            key=row.key,
            prompt_hash=row.prompt_hash,
            request_hash=row.request_hash,
            run_id=self.run_id,
            replaces=row.exists,
            pages=row.pages,
        )

    async def _one(self, row: PreparedRow) -> RowResult:
        assert row.messages is not None and row.request_hash is not None
        result = self._result(row)
        first_turn = messages = row.messages
        chars = row.chars
        started = time.perf_counter()
        CURRENT_ROW.set((str(row.key), row.request_hash))
        max_tokens = self.max_tokens
        last: ExtractError | None = None
        #: the last valid answer whose required values were not all found (run.ungrounded: flag)
        flagged: _Answer | None = None
        try:
            for attempt in range(1, self.max_attempts + 1):
                result.attempts = attempt
                body = self.bodies.encode(messages, max_tokens)
                try:
                    completion = await self._send(body, chars, max_tokens, result, attempt)
                except RepeatedFailure as e:
                    last = e
                    messages = reask(first_turn, None, e, attempt=attempt)
                    chars = row.chars + len(messages[-1]["content"])
                    continue
                result.usage.add(completion.usage)
                result.model = completion.model
                result.provider = completion.provider
                result.finish_reason = completion.finish_reason
                result.batch_id = completion.batch_id
                result.generation_id = completion.generation_id
                result.system_fingerprint = completion.system_fingerprint
                try:
                    result.instance = parse_completion(completion, self.compiled)
                    self.assessor.assess(result, completion, row.texts)
                    missing = self.assessor.required_missing(result, completion.content or "")
                    if missing is None:
                        return result
                    if self.assessor.keep_ungrounded:
                        flagged = _Answer.of(result)
                    raise missing
                except Refusal as e:
                    last = e
                    break
                except ContentError as e:
                    last = e
                    messages = reask(
                        first_turn, completion, e, reasoning_details=self.reasoning_details
                    )
                    chars = row.chars + len(messages[-2]["content"]) + len(messages[-1]["content"])
                    if isinstance(e, TruncatedOutput) and max_tokens is not None:
                        max_tokens = min(max_tokens * TRUNCATION_GROWTH, MAX_TOKENS_CAP)
        except (RunStopped, BudgetExceeded, BatchPending):
            raise
        except APIError as e:
            last = e
        finally:
            result.latency_ms = (time.perf_counter() - started) * 1000
            result.finished_at = dt.datetime.now(dt.UTC)
        assert last is not None
        if flagged is not None:
            flagged.restore(result)
            return result
        result.instance = None
        _Answer(None, result.model, result.provider, result.finish_reason).restore(result)
        result.error_class = type(last).__name__
        result.message = str(last)
        result.raw_output = getattr(last, "raw", None) or getattr(last, "body", None) or None
        return result


def row_worker(
    config: PipelineConfig,
    compiled: CompiledSchema,
    template: dict[str, Any],
    assessor: Assessor,
    transport: Transport,
    *,
    budget: Budget,
    limit: AdaptiveLimit,
    run_id: str,
    reasoning_details: bool,
    reask_transport: Transport | None = None,
    merger: Merger | None = None,
    share: int = 1,
) -> RowWorker:
    """The RowWorker of a run (every engine builds its workers here): `template` is the
    request without its messages, `merger` merges a split row's parts; `share` workers split
    run.rate_limit evenly."""
    run, model = config.run, config.model
    rpm, tpm = run.rate_limit.requests_per_minute, run.rate_limit.tokens_per_minute
    return RowWorker(
        transport,
        compiled,
        BodyEncoder(template),
        max_attempts=run.max_attempts,
        max_retries=run.max_retries,
        backoff_s=run.backoff_s,
        max_tokens=model.max_tokens,
        budget=budget,
        limit=limit,
        reasoning_details=reasoning_details,
        run_id=run_id,
        assessor=assessor,
        reask_transport=reask_transport,
        rate=RateLimit(None if rpm is None else rpm / share, None if tpm is None else tpm / share),
        merger=merger,
    )
