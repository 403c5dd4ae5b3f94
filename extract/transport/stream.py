"""Streamed replies (`model.stream: true`): OpenRouter's server-sent events read into the one
Completion a whole reply gives, with two guards a whole reply cannot have.

- An idle timeout between events (`model.idle_timeout_s`): a connection that accepted the request
  and then goes quiet is a `ConnectionFailed` (retried) after seconds, not after the whole
  `model.timeout_s`.
- Runaway output: when the text's tail is one short piece repeated over and over, reading stops
  and the answer so far comes back with finish reason `length`, as a truncated one would: it is
  re-asked the same way, and the tokens it would have run on for are not paid for.

`:` lines are comments (OpenRouter's keep-alives) and skipped; an `error` inside the stream of a
200 is an `UpstreamError`, as it is inside a whole reply.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Callable
from typing import Any

import orjson

from ..errors import UpstreamError
from .base import Completion, Usage
from .replies import usage_of

__all__ = ["is_runaway", "read_stream"]

#: a tail this long made of one piece repeated is a runaway answer
RUNAWAY_SPAN = 160
#: the longest piece whose repetition counts, and how often it must repeat
RUNAWAY_PERIOD = 40
RUNAWAY_REPEATS = 4


def is_runaway(text: str) -> bool:
    """Whether the text ends in one piece of at most RUNAWAY_PERIOD characters repeated over at
    least RUNAWAY_SPAN characters (and RUNAWAY_REPEATS times)."""
    if len(text) < RUNAWAY_SPAN:
        return False
    for period in range(1, RUNAWAY_PERIOD + 1):
        span = max(RUNAWAY_SPAN, period * RUNAWAY_REPEATS)
        if span > len(text):
            break
        tail = text[-span:]
        piece = tail[-period:]
        if tail == (piece * (span // period + 1))[-span:]:
            return True
    return False


async def read_stream(
    lines: AsyncIterable[bytes], latency_started: float, scrub: Callable[[str], str]
) -> Completion:
    """The Completion in a stream of SSE lines."""
    content: list[str] = []
    reasoning: list[str] = []
    refusal: list[str] = []
    finish: str | None = None
    usage: Usage = Usage()
    head: dict[str, Any] = {}
    length = checked = 0
    tail = ""  # the last characters of the content, for the runaway check
    async for raw in lines:
        line = raw.strip()
        if not line or line.startswith(b":"):
            continue
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError as e:
            text = scrub(data.decode("utf-8", "replace")[:300])
            raise UpstreamError("a streamed event is not JSON", status=200, body=text) from e
        if not isinstance(chunk, dict):
            continue
        if chunk.get("error"):
            error = chunk["error"]
            message = error.get("message") if isinstance(error, dict) else str(error)
            raise UpstreamError(
                f"generation failed: {scrub(str(message))}",
                status=200,
                body=scrub(data.decode("utf-8", "replace")[:500]),
            )
        if not head:
            head = chunk
        if chunk.get("usage"):
            usage = usage_of(chunk["usage"])
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta") or {}
        if isinstance(delta.get("content"), str):
            content.append(delta["content"])
            length += len(delta["content"])
            tail = (tail + delta["content"])[-2 * RUNAWAY_SPAN :]
        if isinstance(delta.get("reasoning"), str):
            reasoning.append(delta["reasoning"])
        if isinstance(delta.get("refusal"), str):
            refusal.append(delta["refusal"])
        if choice.get("finish_reason"):
            finish = choice["finish_reason"]
        if finish == "error":
            raise UpstreamError("generation failed inside the stream", status=200)
        if length - checked >= 64:  # every few chunks: is it repeating itself?
            checked = length
            if is_runaway(tail):
                finish = "length"
                break
    return Completion(
        content="".join(content) if content or not refusal else None,
        reasoning="".join(reasoning) or None,
        reasoning_details=None,
        refusal="".join(refusal) or None,
        finish_reason=finish,
        provider=head.get("provider"),
        model=head.get("model"),
        usage=usage,
        latency_ms=(time.perf_counter() - latency_started) * 1000,
        generation_id=head.get("id") if isinstance(head.get("id"), str) else None,
        system_fingerprint=head.get("system_fingerprint")
        if isinstance(head.get("system_fingerprint"), str)
        else None,
    )
