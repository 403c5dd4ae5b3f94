"""The transport seam: what the runner needs from an endpoint, and the values it gets back.

A `Transport` sends one encoded chat-completions body and returns a `Completion` or raises an
`APIError` subclass. `HttpTransport` (transport/http.py) is the real one over aiohttp;
`FakeTransport` (transport/fake.py) answers in-process from a function, for tests. Both turn the
reply into a Completion with the same code (transport/replies.py), so a test through the fake
exercises exactly the parsing a live endpoint gets.
"""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

__all__ = ["CURRENT_ROW", "BodyEncoder", "Completion", "Transport", "Usage", "encode_body"]

#: the row a request is sent for, as (key, request hash): set by the row worker in the row's
#: own task, read by a transport that keeps books per row (batch mode's lines)
CURRENT_ROW: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "extract_current_row", default=None
)


@dataclass(slots=True)
class Usage:
    """Token counts and cost of one or more requests."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None

    def add(self, other: Usage) -> None:
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.reasoning_tokens += other.reasoning_tokens
        self.cached_tokens += other.cached_tokens
        if other.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + other.cost_usd


@dataclass(slots=True)
class Completion:
    """The parts of a chat-completions reply that the pipeline uses."""

    content: str | None
    reasoning: str | None
    reasoning_details: list[Any] | None
    refusal: str | None
    finish_reason: str | None
    provider: str | None
    model: str | None
    usage: Usage
    latency_ms: float
    #: `choices[0].logprobs` as the endpoint sent it (None when it sent none)
    logprobs: Any = None
    #: run.mode batch: the id of the batch that answered
    batch_id: str | None = None
    #: the reply's `id` (OpenRouter's generation id) and `system_fingerprint`, when it has them
    generation_id: str | None = None
    system_fingerprint: str | None = None


class Transport(Protocol):
    """Sends chat-completions bodies: `async with transport: await transport.complete(body)`."""

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(self, *exc: object) -> None: ...

    async def complete(self, body: bytes) -> Completion:
        """Send one request body. Raises an APIError subclass chosen by what went wrong."""
        ...


def encode_body(value: Any) -> bytes:
    """A request body (or part of one) as compact UTF-8 JSON."""
    return orjson.dumps(value)


class BodyEncoder:
    """Encodes request bodies that share every field but `messages` (and, on a re-ask after a
    truncated answer, `max_tokens`). The shared part, the compiled schema above all, is encoded
    once; per request only the messages are: about a tenth of the CPU a row costs otherwise."""

    def __init__(self, template: dict[str, Any]):
        self.template = template
        # The same bytes as encode_body({**template, "messages": m}): messages come last.
        self._prefix = encode_body(template)[:-1] + b',"messages":'

    def encode(self, messages: list[dict[str, Any]], max_tokens: int | None) -> bytes:
        if max_tokens == self.template.get("max_tokens"):
            return self._prefix + encode_body(messages) + b"}"
        body = {**self.template, "messages": messages}
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return encode_body(body)
