"""The aiohttp application: its routes and their handlers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from typing import Any

from aiohttp import web

from extract.providers.testserver import fakegen
from extract.providers.testserver.faults import ServerConfig, draw
from extract.providers.testserver.replies import (
    DEFAULT_MODEL,
    PRICE_INPUT_PER_M,
    PRICE_OUTPUT_PER_M,
    error_response,
    http_fault,
    json_response,
    reply,
)
from extract.providers.testserver.schemas import Prepared, prepare
from extract.providers.testserver.state import STATE, State

__all__ = ["make_app"]


def make_app(config: ServerConfig | None = None) -> web.Application:
    """Build the aiohttp application (routes and state) without starting it."""
    app = web.Application()
    app[STATE] = State(config or ServerConfig())
    app.router.add_post("/v1/chat/completions", _chat_completions)
    app.router.add_get("/v1/models", _models)
    app.router.add_get("/health", _health)
    app.router.add_get("/stats", _stats)
    app.router.add_post("/reset", _reset)
    return app


# --------------------------------------------------------------------------- handlers


async def _chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    config = state.config
    state.total += 1
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
    if not isinstance(body, dict):
        return error_response(state, 400, "request body must be a JSON object")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return error_response(state, 400, "messages must be a non-empty list")
    if body.get("stream"):
        return error_response(state, 400, "the test server does not stream; send stream: false")

    row = fakegen.answer_seed(messages, body.get("seed"))
    state.rows[row.hex()] += 1
    body_key = hashlib.blake2b(raw, digest_size=16).digest()
    occurrence = state.seen.get(body_key, 0)
    state.seen[body_key] = occurrence + 1

    prepared: Prepared | None = None
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
            return error_response(
                state, 400, "response_format.json_schema.schema must be an object"
            )
        if spec.get("strict") is not True:
            return error_response(state, 400, "response_format.json_schema.strict must be true")
        text = json.dumps(spec["schema"], separators=(",", ":"))
        prepared = prepare(text)
        if prepared.problem:
            return error_response(
                state, 400, f"Invalid schema for response_format: {prepared.problem}"
            )

    fault, bits = draw(state.config, body_key, occurrence)
    if fault is not None:
        state.faults[fault] += 1
        early = http_fault(state, request, fault, bits, body)
        if early is not None:
            return early

    if prepared is not None and prepared.node is not None:
        try:
            answer: Any = prepared.node(random.Random(row), 0)
        except ValueError as e:
            return error_response(state, 400, f"the test server cannot answer this schema: {e}")
    else:
        answer = {}
    return reply(state, body, messages, row, answer, fault, prepared)


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
