"""The HTTP client: one chat-completions request in, one typed Completion (or typed error) out.

Built on aiohttp directly rather than httpx: on this kind of machine httpx 0.28's pool costs
33-42 ms of CPU per request at concurrency 128 and the httpx-aiohttp adapter about twice the bare
aiohttp loop, while the benchmark goal allows 1.5x of that loop for the whole row
(see ../shared/reference/http-clients.md and bench/). This is the only module that does HTTP.

Every failure becomes a class of the one exception tree; the retry policy reads the class only.
The API key lives in a header and is scrubbed from anything echoed into an error.
"""

from __future__ import annotations

import email.utils
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from .errors import (
    APIError,
    ConnectionFailed,
    RateLimited,
    RowRejected,
    RunStopped,
    ServerError,
    UpstreamError,
)

__all__ = ["BodyEncoder", "ChatClient", "Completion", "Usage", "encode_body"]


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


def encode_body(value: Any) -> bytes:
    """A request body (or part of one) as compact UTF-8 JSON."""
    return orjson.dumps(value)


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def _usage(data: Any) -> Usage:
    if not isinstance(data, dict):
        return Usage()
    prompt_details = data.get("prompt_tokens_details") or {}
    completion_details = data.get("completion_tokens_details") or {}
    cost = data.get("cost")
    return Usage(
        prompt_tokens=_int(data.get("prompt_tokens")),
        completion_tokens=_int(data.get("completion_tokens")),
        reasoning_tokens=_int(completion_details.get("reasoning_tokens")),
        cached_tokens=_int(prompt_details.get("cached_tokens")),
        cost_usd=float(cost) if isinstance(cost, (int, float)) else None,
    )


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(body: str, status: int) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:200] or f"HTTP {status}"
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and err.get("message"):
        return str(err["message"])[:300]
    if isinstance(err, str):
        return err[:300]
    return body.strip()[:200] or f"HTTP {status}"


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


class ChatClient:
    """An OpenAI-compatible chat-completions client over one pooled aiohttp session.

    Use as `async with ChatClient(...) as client: await client.complete(body)`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        timeout_s: float = 300,
        max_connections: int = 64,
        headers: dict[str, str] | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._api_key = api_key
        self._headers = {"Content-Type": "application/json", **(headers or {})}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ChatClient:
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, headers=self._headers
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _scrub(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    async def complete(self, body: dict[str, Any] | bytes) -> Completion:
        """Send one request. Raises an APIError subclass chosen by what went wrong."""
        if self._session is None:
            raise RuntimeError("ChatClient used outside 'async with'")
        payload = body if isinstance(body, bytes) else encode_body(body)
        started = time.perf_counter()
        try:
            async with self._session.post(self.url, data=payload) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError as e:
            raise ConnectionFailed(f"request timed out after {self._timeout.total:g} s") from e
        except aiohttp.ClientError as e:
            raise ConnectionFailed(
                f"connection failed: {self._scrub(str(e)) or type(e).__name__}"
            ) from e
        latency_ms = (time.perf_counter() - started) * 1000
        if status != 200:
            text = raw.decode("utf-8", errors="replace")
            raise self._status_error(status, self._scrub(text), retry_after)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            text = raw.decode("utf-8", errors="replace")
            raise UpstreamError(
                "the reply is not JSON", status=status, body=self._scrub(text[:500])
            ) from e
        if not isinstance(data, dict):
            text = raw.decode("utf-8", errors="replace")
            raise UpstreamError("the reply is not a JSON object", status=status, body=text[:500])
        choices = data.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if (
            data.get("error")
            or not isinstance(choice, dict)
            or choice.get("finish_reason") == "error"
        ):
            text = raw.decode("utf-8", errors="replace")
            message = (
                _error_message(text, status) if data.get("error") else "reply carries no choice"
            )
            raise UpstreamError(
                f"generation failed: {self._scrub(message)}",
                status=status,
                body=self._scrub(text[:500]),
            )
        message_obj = choice.get("message") or {}
        details = message_obj.get("reasoning_details")
        return Completion(
            content=message_obj.get("content"),
            reasoning=message_obj.get("reasoning"),
            reasoning_details=details if isinstance(details, list) else None,
            refusal=message_obj.get("refusal"),
            finish_reason=choice.get("finish_reason"),
            provider=data.get("provider"),
            model=data.get("model"),
            usage=_usage(data.get("usage")),
            latency_ms=latency_ms,
        )

    @staticmethod
    def _status_error(status: int, body: str, retry_after_header: str | None) -> APIError:
        message = f"HTTP {status}: {_error_message(body, status)}"
        retry_after = _retry_after(retry_after_header)
        if status == 429 or (status == 402 and retry_after is not None):
            return RateLimited(message, status=status, body=body[:500], retry_after=retry_after)
        if status in (401, 402):
            return RunStopped(message, status=status, body=body[:500])
        if status == 408 or status >= 500:
            return ServerError(message, status=status, body=body[:500])
        return RowRejected(message, status=status, body=body[:500])
