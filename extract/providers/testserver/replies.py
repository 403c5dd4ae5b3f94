"""Replies in OpenRouter's shape: completions, error bodies, and the faults that break them.

Everything here but `error_response` is pure: it builds an `Answer` (status, JSON payload,
headers) and leaves counting it to the caller, so the chat endpoint and each line of a batch
(`batches.py`) answer a body the same way and keep their own counters.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from extract.providers.testserver.faults import ServerConfig
from extract.providers.testserver.schemas import Prepared

if TYPE_CHECKING:
    from extract.providers.testserver.state import State

__all__ = [
    "BATCH_DISCOUNT",
    "DEFAULT_MODEL",
    "DEFAULT_REASONING_TOKENS",
    "IMAGE_TOKENS",
    "PRICE_INPUT_PER_M",
    "PRICE_OUTPUT_PER_M",
    "Answer",
    "completion",
    "count_prompt_tokens",
    "error_payload",
    "error_response",
    "http_fault",
    "json_response",
    "usage_cost",
]

DEFAULT_MODEL = "qwen/qwen3.5-27b"
PRICE_INPUT_PER_M = 0.195
PRICE_OUTPUT_PER_M = 1.56
#: batch lines cost this share of the sync price (OpenRouter: "typically 50%")
BATCH_DISCOUNT = 0.5
#: tokens billed per image part (a fixed figure; the text is billed at ~4 characters a token)
IMAGE_TOKENS = 256
#: reasoning tokens spent by a `reasoning_only` reply when the request sets no max_tokens
DEFAULT_REASONING_TOKENS = 1024


def usage_cost(prompt_tokens: int, completion_tokens: int) -> float:
    """Dollar cost the server reports for these token counts."""
    return (prompt_tokens * PRICE_INPUT_PER_M + completion_tokens * PRICE_OUTPUT_PER_M) / 1e6


@dataclass(frozen=True)
class Answer:
    """What the chat endpoint answers to one request body, before anything is sent or counted."""

    status: int
    payload: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    #: the fault drawn for this request, if any
    fault: str | None = None
    #: the row the request is about; None when it was refused before that was known
    row: bytes | None = None
    #: cut the connection instead of answering (the `drop` fault)
    drop: bool = False
    #: how many times this exact body was seen before
    occurrence: int = 0


# --------------------------------------------------------------------------- responses


def json_response(status: int, payload: Any, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON reply."""
    return web.Response(
        status=status,
        body=json.dumps(payload).encode(),
        content_type="application/json",
        headers=headers,
    )


def error_payload(
    status: int, message: str, metadata: dict[str, Any] | None = None
) -> dict[str, Any]:
    """OpenRouter's error body: `{"error": {"code", "message", "metadata"?}}`."""
    error: dict[str, Any] = {"code": status, "message": message}
    if metadata is not None:
        error["metadata"] = metadata
    return {"error": error}


def error_response(
    state: State, status: int, message: str, metadata: dict[str, Any] | None = None, **kw: Any
) -> web.Response:
    """An error reply of the chat endpoint, counted in its status counts."""
    state.statuses[str(status)] += 1
    return json_response(status, error_payload(status, message, metadata), **kw)


def _error(
    status: int, message: str, metadata: dict[str, Any] | None = None, **headers: str
) -> Answer:
    return Answer(status, error_payload(status, message, metadata), headers)


def count_prompt_tokens(messages: list[Any]) -> int:
    """Prompt tokens billed for `messages`: ~4 characters a token, `IMAGE_TOKENS` per image."""
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


def http_fault(config: ServerConfig, fault: str, bits: int, body: dict[str, Any]) -> Answer | None:
    """The answer for faults that replace the completion entirely; None for content faults."""
    provider = {"provider_name": "fake"}
    if fault == "rate_limit":
        headers = {"X-RateLimit-Limit": "600", "X-RateLimit-Remaining": "0"}
        if config.retry_after:
            headers["Retry-After"] = config.retry_after
        try:
            wait_s = float(config.retry_after or 0)
        except ValueError:  # an HTTP-date Retry-After
            wait_s = 0.0
        headers["X-RateLimit-Reset"] = str(int((time.time() + wait_s) * 1000))
        return _error(
            429,
            "Rate limit exceeded: fake/qwen is temporarily rate-limited upstream",
            {**provider, "raw": "rate limited"},
            **headers,
        )
    if fault == "server_error":
        if bits & 1:
            return _error(503, "No available provider meets the routing requirements")
        return _error(502, "Upstream provider returned an invalid response", provider)
    if fault == "timeout":
        return _error(408, "Upstream request timed out", provider)
    if fault == "drop":
        # 599 is never sent: the handler cuts the TCP connection with no reply.
        return Answer(599, {}, drop=True)
    if fault == "bad_request":
        return _error(400, "Provider returned error: invalid request parameters")
    if fault == "forbidden":
        metadata = {
            "reasons": ["violence"],
            "flagged_input": "...",
            "provider_name": "fake",
            "model_slug": str(body.get("model") or DEFAULT_MODEL),
        }
        return _error(403, "Input was flagged by moderation", metadata)
    if fault == "payment":
        return _error(402, "Insufficient credits. Add more using https://openrouter.ai")
    return None


def completion(
    config: ServerConfig,
    body: dict[str, Any],
    messages: list[Any],
    row: bytes,
    answer: Any,
    fault: str | None,
    prepared: Prepared | None,
    gen_id: str,
    price_factor: float = 1.0,
) -> Answer:
    """The 200 answer carrying `answer` as the content, broken as the content fault asks.

    `price_factor` scales the reported cost (`BATCH_DISCOUNT` for batch lines).
    """
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
    elif fault == "runaway":
        # the same words over and over until max_tokens: what a small model does at times
        content = content[: len(content) // 2] + "and again " * ((max_tokens or 4096) * 4 // 10)
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
    cost = usage_cost(prompt_tokens, completion_tokens) * price_factor
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
    if body.get("logprobs") is True and config.logprobs and content:
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
        "system_fingerprint": config.system_fingerprint,
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
    return Answer(200, payload, {"X-Generation-Id": gen_id}, fault, row)


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
