"""Replies in OpenRouter's shape: completions, error bodies, and the faults that break them."""

from __future__ import annotations

import json
import random
import time
from typing import Any

from aiohttp import web

from extract.providers.testserver.schemas import Prepared
from extract.providers.testserver.state import State

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_REASONING_TOKENS",
    "IMAGE_TOKENS",
    "PRICE_INPUT_PER_M",
    "PRICE_OUTPUT_PER_M",
    "count_prompt_tokens",
    "error_response",
    "http_fault",
    "json_response",
    "reply",
    "usage_cost",
]

DEFAULT_MODEL = "qwen/qwen3.5-27b"
PRICE_INPUT_PER_M = 0.195
PRICE_OUTPUT_PER_M = 1.56
#: tokens billed per image part (a fixed figure; the text is billed at ~4 characters a token)
IMAGE_TOKENS = 256
#: reasoning tokens spent by a `reasoning_only` reply when the request sets no max_tokens
DEFAULT_REASONING_TOKENS = 1024


def usage_cost(prompt_tokens: int, completion_tokens: int) -> float:
    """Dollar cost the server reports for these token counts."""
    return (prompt_tokens * PRICE_INPUT_PER_M + completion_tokens * PRICE_OUTPUT_PER_M) / 1e6


# --------------------------------------------------------------------------- responses


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_response(
    state: State, status: int, message: str, metadata: dict[str, Any] | None = None, **kw: Any
) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    state.statuses[str(status)] += 1
    return json_response(status, {"error": error}, **kw)


def count_prompt_tokens(messages: list[Any]) -> int:
    chars = 0
    images = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "image_url":
                    images += 1
                else:
                    chars += len(str(part.get("text", "")))
    return (chars + 3) // 4 + images * IMAGE_TOKENS


def http_fault(
    state: State, request: web.Request, fault: str, bits: int, body: dict[str, Any]
) -> web.StreamResponse | None:
    """The reply for faults that replace the completion entirely; None for content faults."""
    provider = {"provider_name": "fake"}
    if fault == "rate_limit":
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
        if state.config.retry_after:
            headers["Retry-After"] = state.config.retry_after
        try:
            wait_s = float(state.config.retry_after or 0)
        except ValueError:  # an HTTP-date Retry-After
            wait_s = 0.0
        headers["X-RateLimit-Reset"] = str(int((time.time() + wait_s) * 1000))
        return error_response(
            state,
            429,
            "Rate limit exceeded: fake/qwen is temporarily rate-limited upstream",
            {**provider, "raw": "rate limited"},
            headers=headers,
        )
    if fault == "server_error":
        if bits & 1:
            return error_response(
                state, 503, "No available provider meets the routing requirements"
            )
        return error_response(
            state, 502, "Upstream provider returned an invalid response", provider
        )
    if fault == "timeout":
        return error_response(state, 408, "Upstream request timed out", provider)
    if fault == "drop":
        transport = request.transport
        if transport is not None:
            # Cut the TCP connection with no reply; the client sees a server disconnect.
            transport.abort()
        # aiohttp skips writing a reply to an aborted transport (debug log only, no traceback).
        return web.Response(status=599)
    if fault == "bad_request":
        return error_response(state, 400, "Provider returned error: invalid request parameters")
    if fault == "forbidden":
        metadata = {
            "reasons": ["violence"],
            "flagged_input": "...",
            "provider_name": "fake",
            "model_slug": str(body.get("model") or DEFAULT_MODEL),
        }
        return error_response(state, 403, "Input was flagged by moderation", metadata)
    if fault == "payment":
        return error_response(
            state, 402, "Insufficient credits. Add more using https://openrouter.ai"
        )
    return None


def reply(
    state: State,
    body: dict[str, Any],
    messages: list[Any],
    row: bytes,
    answer: Any,
    fault: str | None,
    prepared: Prepared | None,
) -> web.Response:
    state.generation += 1
    gen_id = f"gen-{row.hex()[:12]}-{state.generation}"
    content: str | None = json.dumps(answer)
    reasoning: str | None = None
    refusal: str | None = None
    finish = "stop"
    max_tokens = body.get("max_tokens") if isinstance(body.get("max_tokens"), int) else None
    reasoning_tokens = 0
    error: dict[str, Any] | None = None
    assert content is not None

    if fault == "malformed":
        content = content[: len(content) // 2]
    elif fault == "fenced":
        content = f"```json\n{content}\n```"
    elif fault == "prose":
        content = f"Here is the extracted data:\n{content}\nLet me know if you need anything else."
    elif fault == "invalid":
        content = json.dumps(_break(answer, prepared))
    elif fault == "length":
        content = content[: max(1, len(content) * 2 // 3)]
        finish = "length"
    elif fault == "reasoning_only":
        content = ""
        reasoning = "Let me look at the input carefully and work out each field in turn..."
        reasoning_tokens = max_tokens or DEFAULT_REASONING_TOKENS
        finish = "length"
    elif fault == "refusal":
        content = None
        refusal = "I'm sorry, but I can't help with that request."
    elif fault == "upstream_error":
        content = ""
        finish = "error"
        error = {
            "code": 502,
            "message": "Upstream provider error during generation",
            "metadata": {"provider_name": "fake"},
        }

    prompt_tokens = count_prompt_tokens(messages)
    if fault == "length" and max_tokens:
        completion_tokens = max_tokens
    else:
        completion_tokens = reasoning_tokens + (len(content or refusal or "") + 3) // 4
    cost = usage_cost(prompt_tokens, completion_tokens)
    choice: dict[str, Any] = {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": content,
            "reasoning": reasoning,
            "refusal": refusal,
        },
        "finish_reason": finish,
        "native_finish_reason": finish,
    }
    if error is not None:
        choice["error"] = error
    if body.get("logprobs") is True and state.config.logprobs and content:
        top = body.get("top_logprobs")
        choice["logprobs"] = {
            "content": fake_logprobs(content, row, top if isinstance(top, int) else 0)
        }
    payload: dict[str, Any] = {
        "id": gen_id,
        "provider": "fake",
        "model": str(body.get("model") or DEFAULT_MODEL),
        "object": "chat.completion",
        "created": int(time.time()),
        "choices": [choice],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost": cost,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
        },
    }
    if error is not None:
        payload["error"] = error
    state.statuses["200"] += 1
    state.prompt_tokens += prompt_tokens
    state.completion_tokens += completion_tokens
    state.cost += cost
    return json_response(200, payload, headers={"X-Generation-Id": gen_id})


def fake_logprobs(content: str, seed: bytes, top: int) -> list[dict[str, Any]]:
    """Made-up token log-probabilities for `content`, the same for the same seed: the content's
    UTF-8 bytes cut into 1-6 byte tokens (a cut may split a character, as real tokenizers do:
    `token` is then the lossy text, `bytes` exact), each with a log-probability in [-2, 0) and
    `top` alternatives less likely than it."""
    rng = random.Random(seed)
    data = content.encode("utf-8")
    tokens: list[dict[str, Any]] = []
    i = 0
    while i < len(data):
        piece = data[i : i + rng.randint(1, 6)]
        i += len(piece)
        # mostly sure, sometimes not: log-probabilities near 0 with a tail
        logprob = -min(2.0, rng.expovariate(20.0))
        alternatives = [
            {"token": f"<alt{n}>", "bytes": list(f"<alt{n}>".encode()),
             "logprob": logprob - 0.5 - n - rng.random()}
            for n in range(max(0, top - 1))
        ]  # fmt: skip
        chosen = {"token": piece.decode("utf-8", "replace"), "bytes": list(piece)}
        tokens.append(
            {
                **chosen,
                "logprob": logprob,
                "top_logprobs": [{**chosen, "logprob": logprob}, *alternatives],
            }
        )
    return tokens


def _break(answer: Any, prepared: Prepared | None) -> Any:
    """Valid JSON that the schema rejects: drop a required property, else change the type."""
    if isinstance(answer, dict) and prepared is not None and prepared.required:
        broken = dict(answer)
        broken.pop(prepared.required[0], None)
        return broken
    if isinstance(answer, dict):
        # No schema (or nothing required): a list is the wrong type for an object answer.
        return [answer]
    return {"unexpected": answer}
