"""The aiohttp application: its routes and their handlers, and `answer`, the chat endpoint's
core that the Batch API (`batch_routes.py`) reuses for each line of a batch."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import random
from collections.abc import Callable
from typing import Any

from aiohttp import web

from extract.providers.testserver import fakegen
from extract.providers.testserver.batch_routes import add_batch_routes
from extract.providers.testserver.faults import ServerConfig, draw
from extract.providers.testserver.fromtext import from_text
from extract.providers.testserver.replies import (
    DEFAULT_MODEL,
    PRICE_INPUT_PER_M,
    PRICE_OUTPUT_PER_M,
    Answer,
    completion,
    error_payload,
    error_response,
    http_fault,
    json_response,
)
from extract.providers.testserver.schemas import Prepared, prepare
from extract.providers.testserver.state import STATE, State

__all__ = ["answer", "make_app"]


def make_app(config: ServerConfig | None = None) -> web.Application:
    """Build the aiohttp application (routes and state) without starting it."""
    app = web.Application()
    app[STATE] = State(config or ServerConfig(), answer)
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/reset", _reset)
    add_batch_routes(app)
    return app


# --------------------------------------------------------------------------- the chat core


def answer(
    config: ServerConfig,
    body: Any,
    body_key: bytes,
    seen: dict[bytes, int],
    new_id: Callable[[bytes], str],
    price_factor: float = 1.0,
) -> Answer:
    """What the chat endpoint answers to a parsed request `body`, without sending or counting it.

    `body_key` identifies the body for the fault draw and `seen` counts its sightings (it is
    updated here), so an identical retry draws anew. `new_id(row)` names a completion;
    `price_factor` scales its cost. Latency and auth are the caller's business.
    """
    if not isinstance(body, dict):
        return Answer(400, error_payload(400, "request body must be a JSON object"))
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return Answer(400, error_payload(400, "messages must be a non-empty list"))
    row = fakegen.answer_seed(messages, body.get("seed"))
    occurrence = seen.get(body_key, 0)
    seen[body_key] = occurrence + 1

    prepared: Prepared | None = None
    schema: dict[str, Any] = {}
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            message = "response_format.json_schema.schema must be an object"
            return Answer(400, error_payload(400, message), row=row)
        if spec.get("strict") is not True:
            message = "response_format.json_schema.strict must be true"
            return Answer(400, error_payload(400, message), row=row)
        schema = spec["schema"]
        text = json.dumps(schema, separators=(",", ":"))
        prepared = prepare(text)
        if prepared.problem:
            message = f"Invalid schema for response_format: {prepared.problem}"
            return Answer(400, error_payload(400, message), row=row)

    fault, bits = draw(config, body_key, occurrence)
    if fault is not None:
        early = http_fault(config, fault, bits, body)
        if early is not None:
            return dataclasses.replace(early, fault=fault, row=row)

    if prepared is not None and prepared.node is not None:
        try:
            # a drifted row (a changed model, as a replay sees it) draws another answer
            drifted = config.drift and row[-1] / 256 < config.drift
            value: Any = prepared.node(random.Random(row + b"drift" if drifted else row), 0)
        except ValueError as e:
            message = f"the test server cannot answer this schema: {e}"
            return Answer(400, error_payload(400, message), fault=fault, row=row)
        if config.answer_from_text and isinstance(value, dict):
            value = from_text(value, messages, schema)
    else:
        value = {}
    result = completion(
        config, body, messages, row, value, fault, prepared, new_id(row), price_factor
    )
    return dataclasses.replace(result, occurrence=occurrence)


# --------------------------------------------------------------------------- handlers


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    state.total += 1
    cap = config.max_concurrency
    if cap is not None and state.in_flight >= cap:
        # a provider that caps concurrent requests answers the one over the cap at once
        state.capped += 1
        return error_response(state, 429, f"too many concurrent requests (at most {cap})")
    state.in_flight += 1
    state.peak_in_flight = max(state.peak_in_flight, state.in_flight)
    try:
        return await _answer_chat(request, state, config)
    finally:
        state.in_flight -= 1


async def _answer_chat(
    request: web.Request, state: State, config: ServerConfig
) -> web.StreamResponse:
    if config.latency_ms or config.jitter_ms:
        delay = state.jitter.uniform(
            config.latency_ms - config.jitter_ms, config.latency_ms + config.jitter_ms
        )
        await asyncio.sleep(max(delay, 0.0) / 1000)

    if config.api_key is not None and (
        request.headers.get("Authorization") != f"Bearer {config.api_key}"
    ):
        return error_response(state, 401, "No auth credentials found")

    raw = await request.read()
    try:
        body = json.loads(raw)
    except ValueError:
        return error_response(state, 400, "request body is not valid JSON")
    if config.record_bodies:
        state.bodies.append(body)

    def new_id(row: bytes) -> str:
        state.generation += 1
        return f"gen-{row.hex()[:12]}-{state.generation}"

    # The sync endpoint keys a body by its exact bytes: a retry that re-serialises differently
    # is a different body to the fault draw.
    body_key = hashlib.blake2b(raw, digest_size=16).digest()
    result = answer(state.config, body, body_key, state.seen, new_id)
    if result.row is not None:
        state.rows[result.row.hex()] += 1
    if result.fault is not None:
        state.faults[result.fault] += 1
    if result.drop:
        transport = request.transport
        if transport is not None:
            # Cut the TCP connection with no reply; the client sees a server disconnect.
            transport.abort()
        # aiohttp skips writing a reply to an aborted transport (debug log only, no traceback).
        return web.Response(status=599)
    state.statuses[str(result.status)] += 1
    if result.status == 200:
        usage = result.payload["usage"]
        state.prompt_tokens += usage["prompt_tokens"]
        state.completion_tokens += usage["completion_tokens"]
        state.cost += usage["cost"]
        if isinstance(body, dict) and body.get("stream"):
            return await _stream(request, state, config, result)
    return json_response(result.status, result.payload, headers=result.headers or None)


#: characters of content per streamed chunk
STREAM_PIECE = 12


async def _stream(
    request: web.Request, state: State, config: ServerConfig, result: Answer
) -> web.StreamResponse:
    """The completion as OpenRouter streams it: SSE with `:` comment lines, content deltas,
    a last chunk with the finish reason and usage (an `error` in it for an upstream error)."""
    payload = result.payload
    choice = payload["choices"][0]
    content = choice["message"].get("content") or ""
    response = web.StreamResponse(
        status=200, headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    head = {k: payload[k] for k in ("id", "provider", "model", "created", "system_fingerprint")}

    def event(choice: dict[str, Any], **more: Any) -> bytes:
        chunk = {**head, "object": "chat.completion.chunk", "choices": [choice], **more}
        return b"data: " + json.dumps(chunk).encode() + b"\n\n"

    try:
        await response.write(b": OPENROUTER PROCESSING\n\n")
        pieces = [content[i : i + STREAM_PIECE] for i in range(0, len(content), STREAM_PIECE)]
        for n, piece in enumerate(pieces):
            if n == len(pieces) // 2 and config.stream_stall_ms and result.occurrence == 0:
                await asyncio.sleep(config.stream_stall_ms / 1000)
            delta = {"role": "assistant", "content": piece}
            await response.write(event({"index": 0, "delta": delta, "finish_reason": None}))
        last = {"index": 0, "delta": {}, "finish_reason": choice["finish_reason"]}
        extra = {"error": payload["error"]} if "error" in payload else {}
        await response.write(event(last, usage=payload["usage"], **extra))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
    except ConnectionResetError:
        state.streams_cut += 1  # the client stopped reading (a runaway answer cut short)
    except asyncio.CancelledError:
        state.streams_cut += 1
        raise
    return response


async def _models(request: web.Request) -> web.Response:
    model = {
        "id": DEFAULT_MODEL,
        "name": "Fake Qwen3.5 27B (extract test server)",
        "context_length": 262144,
        "pricing": {
            "prompt": f"{PRICE_INPUT_PER_M / 1e6:.10f}",
            "completion": f"{PRICE_OUTPUT_PER_M / 1e6:.10f}",
        },
        "supported_parameters": ["response_format", "structured_outputs", "seed", "max_tokens"],
    }
    return json_response(200, {"data": [model]})


async def _health(request: web.Request) -> web.Response:
    return json_response(200, {"status": "ok"})


async def _stats(request: web.Request) -> web.Response:
    return json_response(200, request.app[STATE].snapshot())


async def _reset(request: web.Request) -> web.Response:
    request.app[STATE].reset()
    return json_response(200, {"status": "reset"})
