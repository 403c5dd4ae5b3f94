"""An in-process transport for tests: a function answers each request, no sockets.

    def handler(request: dict) -> Reply | dict:
        return chat_reply('{"name": "Ada"}')      # or Reply(status=500, body={...})

    transport = FakeTransport(handler)
    extract.run(pipeline, transport=transport)   # then assert on transport.requests

Replies go through `parse_reply`, the parsing the HTTP transport uses, so status codes, error
bodies and malformed replies behave exactly as they do over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from ..errors import ConnectionFailed
from .base import Completion
from .replies import parse_reply

__all__ = ["Drop", "FakeTransport", "Reply", "chat_reply"]


@dataclass
class Reply:
    """An HTTP reply: status, a JSON body (or raw bytes) and headers."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class Drop(Exception):
    """Raised by a handler: the connection drops without a reply."""


def chat_reply(
    content: str | None,
    *,
    finish_reason: str = "stop",
    model: str = "fake-model",
    provider: str | None = "fake",
    prompt_tokens: int = 10,
    completion_tokens: int = 5,
    cost: float | None = None,
    logprobs: Any = None,
    **message: Any,
) -> Reply:
    """A 200 chat-completions reply whose assistant message says `content` (with `logprobs`:
    the choice's `logprobs` object, e.g. `{"content": [{"token": ..., "logprob": ...}]}`)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cost is not None:
        usage["cost"] = cost
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": content, **message},
        "finish_reason": finish_reason,
    }
    if logprobs is not None:
        choice["logprobs"] = logprobs
    return Reply(
        body={
            "id": "gen-fake",
            "object": "chat.completion",
            "model": model,
            "provider": provider,
            "choices": [choice],
            "usage": usage,
        }
    )


Handler = Callable[[dict[str, Any]], "Reply | dict[str, Any] | Awaitable[Reply | dict[str, Any]]"]


class FakeTransport:
    """Answers each request body with `handler(request)`; keeps every request it was sent."""

    def __init__(self, handler: Handler):
        self.handler = handler
        #: every request body, decoded, in the order they were sent
        self.requests: list[dict[str, Any]] = []

    async def __aenter__(self) -> FakeTransport:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def complete(self, body: bytes) -> Completion:
        request = orjson.loads(body)
        self.requests.append(request)
        await asyncio.sleep(0)  # a real await point, as a socket would give
        try:
            answer = self.handler(request)
            if isinstance(answer, Awaitable):
                answer = await answer
        except Drop as e:
            raise ConnectionFailed(f"connection failed: {e or 'dropped'}") from e
        reply = answer if isinstance(answer, Reply) else Reply(body=answer)
        raw = reply.body if isinstance(reply.body, bytes) else orjson.dumps(reply.body)
        return parse_reply(reply.status, raw, reply.headers.get("Retry-After"), 0.0)
