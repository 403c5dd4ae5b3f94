"""The run: stream rows, keep up to `run.concurrency` requests in flight, write results in batches.

Per row there are two loops, each with its own bound:
- transport retry (retry.py): the identical request again after 429/5xx/timeouts/drops;
- re-ask (here): after unusable output, a *changed* request: the first turn, the bad answer and
  what was wrong with it. Only the latest bad answer is sent, so the conversation stays bounded.
Every row ends as exactly one RowResult (ok or failed), written once; a row is never lost, and an
answer can only reach the row whose request it answers because each task owns its row.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tenacity import AsyncRetrying

from .client import ChatClient, Completion, Usage
from .columns import model_columns
from .config import PipelineConfig
from .errors import (
    APIError,
    ConfigError,
    ContentError,
    ExtractError,
    Refusal,
    RowInputError,
    RunStopped,
    TruncatedOutput,
)
from .prompt import Message, Prompt, prompt_hash
from .results import RowResult, RunSummary
from .retry import transport_retrying
from .schema import CompiledSchema, compile_schema, load_model
from .sinks import Sink, open_sink
from .sources import Source, open_source, resolve_image_base
from .validate import parse_completion

__all__ = ["Pipeline", "prepare", "run"]

#: characters of a bad answer sent back in a re-ask; longer ones are cut (bounded conversation)
REASK_ANSWER_CHARS = 8000
#: max_tokens grows by this factor after a truncated answer, up to MAX_TOKENS_CAP
TRUNCATION_GROWTH = 2
MAX_TOKENS_CAP = 32768

Progress = Callable[[RunSummary], None]


@dataclass
class Pipeline:
    """A pipeline ready to run: config, open source, compiled schema and prompt."""

    config: PipelineConfig
    source: Source
    compiled: CompiledSchema
    prompt: Prompt

    def close(self) -> None:
        self.source.close()


def prepare(config: PipelineConfig) -> Pipeline:
    """Open the source, compile the schema and the prompt; every check that needs no request."""
    compiled = compile_schema(load_model(config.schema_ref, config.base_dir))
    source = open_source(config.source)
    try:
        prompt = Prompt(
            config.prompt,
            columns=source.columns,
            where=str(config.file),
            image_base=resolve_image_base(config.source),
        )
        clash = [c.name for c in model_columns(compiled.model) if c.name == source.key]
        if clash:
            raise ConfigError(
                f"{config.file}:source.key: the key column '{source.key}' has the same name as a "
                f"field of {compiled.model.__name__}; rename the field or select the key under "
                "another name"
            )
        source.check_keys()
    except BaseException:
        source.close()
        raise
    return Pipeline(config, source, compiled, prompt)


def _request_template(config: PipelineConfig, compiled: CompiledSchema) -> dict[str, Any]:
    m = config.model
    body: dict[str, Any] = {
        "model": m.name,
        "response_format": compiled.response_format,
        "seed": m.seed,
    }
    for name in ("temperature", "top_p", "presence_penalty", "max_tokens", "reasoning"):
        value = getattr(m, name)
        if value is not None:
            body[name] = value
    routing = dict(m.routing or {})
    if m.is_openrouter:
        # Only providers that honour response_format and seed; others may silently ignore them.
        routing.setdefault("require_parameters", True)
    if routing:
        body["provider"] = routing
    body.update(m.extra_body)
    return body


def _reask(
    first_turn: list[Message], completion: Completion | None, error: ContentError
) -> list[Message]:
    """The first turn, the bad answer, and what was wrong with it: a changed, bounded request."""
    answer = (error.raw or (completion.content if completion else "") or "")[:REASK_ANSWER_CHARS]
    assistant: Message = {"role": "assistant", "content": answer}
    if completion is not None and completion.reasoning_details:
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
        sink: Sink,
        summary: RunSummary,
        progress: Progress | None,
    ):
        self.p = pipeline
        self.cfg = pipeline.config
        self.client = client
        self.sink = sink
        self.summary = summary
        self.progress = progress
        self.template = _request_template(self.cfg, pipeline.compiled)
        self.prices = self.cfg.model.prices()
        self.buffer: list[RowResult] = []
        self.fatal: BaseException | None = None
        self.stopped: RunStopped | None = None

    def _cost(self, usage: Usage) -> None:
        if usage.cost_usd is None and self.prices is not None:
            pin, pout = self.prices
            usage.cost_usd = (usage.prompt_tokens * pin + usage.completion_tokens * pout) / 1e6

    def retrying(self) -> AsyncRetrying:
        return transport_retrying(self.cfg.run.max_retries, initial=self.cfg.run.backoff_s)

    async def _send(self, body: dict[str, Any], result: RowResult) -> Completion:
        async for attempt in self.retrying():
            with attempt:
                result.requests += 1
                self.summary.requests += 1
                return await self.client.complete(body)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def _process(self, row: dict[str, Any]) -> RowResult:
        key = row.get(self.p.source.key)
        try:
            first_turn = self.p.prompt.messages(row, key)
        except RowInputError as e:
            return RowResult(key=key, prompt_hash="", error_class=type(e).__name__, message=str(e))
        result = RowResult(key=key, prompt_hash=prompt_hash(first_turn))
        started = time.perf_counter()
        messages = first_turn
        max_tokens = self.cfg.model.max_tokens
        last: ExtractError | None = None
        try:
            for attempt in range(1, self.cfg.run.max_attempts + 1):
                result.attempts = attempt
                body = {**self.template, "messages": messages}
                if max_tokens is not None:
                    body["max_tokens"] = max_tokens
                completion = await self._send(body, result)
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
                    if isinstance(e, TruncatedOutput) and max_tokens is not None:
                        max_tokens = min(max_tokens * TRUNCATION_GROWTH, MAX_TOKENS_CAP)
        except RunStopped:
            raise
        except APIError as e:
            last = e
        finally:
            result.latency_ms = (time.perf_counter() - started) * 1000
            self._cost(result.usage)
        assert last is not None
        result.error_class = type(last).__name__
        result.message = str(last)
        result.raw_output = getattr(last, "raw", None) or getattr(last, "body", None) or None
        return result

    async def _row_task(self, row: dict[str, Any], slots: asyncio.Semaphore) -> None:
        try:
            try:
                result = await self._process(row)
            except RunStopped as e:
                if self.stopped is None:
                    self.stopped = e
                return
            except asyncio.CancelledError:
                raise
            except Exception as e:
                # A bug of ours must not lose the row: it lands in the errors table with its trace.
                result = RowResult(
                    key=row.get(self.p.source.key),
                    prompt_hash="",
                    error_class=f"InternalError.{type(e).__name__}",
                    message=f"{e}\n{traceback.format_exc(limit=5)}",
                )
            self._accept(result)
        finally:
            slots.release()

    def _accept(self, result: RowResult) -> None:
        s = self.summary
        if result.ok:
            s.rows_ok += 1
        else:
            s.rows_failed += 1
        s.usage.add(result.usage)
        self.buffer.append(result)
        if len(self.buffer) >= self.cfg.run.batch_size:
            self.flush()
        if self.progress is not None:
            self.progress(s)

    def flush(self) -> None:
        if not self.buffer or self.fatal is not None:
            return
        batch, self.buffer = self.buffer, []
        try:
            self.sink.write(batch)
        except BaseException as e:
            self.fatal = e
            self.buffer = batch + self.buffer

    async def main(self, limit: int | None) -> None:
        slots = asyncio.Semaphore(self.cfg.run.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        rows = (
            row
            for batch in self.p.source.batches(max(self.cfg.run.batch_size, 256), limit)
            for row in batch
        )
        try:
            for row in rows:
                await slots.acquire()
                if self.stopped is not None or self.fatal is not None:
                    slots.release()
                    break
                task = asyncio.create_task(self._row_task(row, slots))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            if tasks:
                await asyncio.wait(set(tasks))
        finally:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(set(tasks))
            self.flush()


def run(
    pipeline: Pipeline,
    *,
    api_key: str | None,
    limit: int | None = None,
    progress: Progress | None = None,
) -> RunSummary:
    """Run a prepared pipeline to its end; on 401/402 write what was done, then raise RunStopped."""
    cfg = pipeline.config
    compiled = pipeline.compiled
    run_id = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    summary = RunSummary(
        run_id=run_id,
        pipeline=cfg.name,
        config_hash=cfg.config_hash(),
        schema_hash=compiled.hash,
        model=cfg.model.name,
        output=str(cfg.output.path),
        table=cfg.table,
        started_at=dt.datetime.now(dt.UTC),
        rows_total=pipeline.source.count(limit),
    )
    sink = open_sink(
        cfg.output.type,
        cfg.output.path,
        cfg.table,
        key=pipeline.source.key,
        key_type=pipeline.source.key_type,
        columns=model_columns(compiled.model),
        seed=cfg.model.seed,
        run_id=run_id,
        schema_hash=compiled.hash,
    )

    async def go(state: list[_Run]) -> None:
        async with ChatClient(
            cfg.model.base_url,
            api_key=api_key,
            timeout_s=cfg.model.timeout_s,
            max_connections=cfg.run.concurrency,
            headers={"X-Title": "extract"},
        ) as client:
            state.append(_Run(pipeline, client, sink, summary, progress))
            await state[0].main(limit)

    state: list[_Run] = []
    try:
        try:
            asyncio.run(go(state))
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
                sink.finish(summary)
    finally:
        sink.close()
    if state and state[0].fatal is not None:
        raise state[0].fatal
    if state and state[0].stopped is not None:
        raise state[0].stopped
    return summary


def api_key_from_env(config: PipelineConfig) -> str | None:
    """The API key named by `model.api_key_env`; ConfigError when that variable is unset."""
    name = config.model.api_key_env
    if not name:
        return None
    value = os.environ.get(name)
    if not value:
        raise ConfigError(
            f"{config.file}:model.api_key_env: environment variable {name} is not set "
            "(export it, or set model.api_key_env to null for an endpoint without a key)"
        )
    return value
