"""A chat-completions reply (status, headers, body bytes) turned into a Completion or a typed error.

Every failure becomes a class of the one exception tree; the retry policy reads the class only.
`scrub` removes the API key from anything echoed into an error.
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable
from typing import Any

import orjson

from ..errors import APIError, RateLimited, RowRejected, RunStopped, ServerError, UpstreamError
from .base import Completion, Usage

__all__ = ["parse_reply", "retry_after_seconds", "status_error", "usage_of"]


def _int(value: Any) -> int:
    return value if isinstance(value, int) else 0


def usage_of(data: Any) -> Usage:
    """The Usage in a reply's `usage` object (zeros for what it lacks)."""
    return _usage(data)


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


def retry_after_seconds(value: str | None) -> float | None:
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


def status_error(status: int, body: str, retry_after_header: str | None) -> APIError:
    """The error class for a non-200 status."""
    message = f"HTTP {status}: {_error_message(body, status)}"
    retry_after = retry_after_seconds(retry_after_header)
    if status == 429 or (status == 402 and retry_after is not None):
        return RateLimited(message, status=status, body=body[:500], retry_after=retry_after)
    if status in (401, 402):
        return RunStopped(message, status=status, body=body[:500])
    if status == 408 or status >= 500:
        return ServerError(message, status=status, body=body[:500])
    return RowRejected(message, status=status, body=body[:500])


def _keep(text: str) -> str:
    return text


def parse_reply(
    status: int,
    raw: bytes,
    retry_after: str | None,
    latency_ms: float,
    scrub: Callable[[str], str] = _keep,
) -> Completion:
    """The Completion in a reply; raises the APIError subclass its status or body calls for."""
    if status != 200:
        raise status_error(status, scrub(raw.decode("utf-8", errors="replace")), retry_after)
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as e:
        text = raw.decode("utf-8", errors="replace")
        raise UpstreamError("the reply is not JSON", status=status, body=scrub(text[:500])) from e
    if not isinstance(data, dict):
        text = raw.decode("utf-8", errors="replace")
        raise UpstreamError("the reply is not a JSON object", status=status, body=scrub(text[:500]))
    choices = data.get("choices")
    choice = choices[0] if isinstance(choices, list) and choices else None
    if data.get("error") or not isinstance(choice, dict) or choice.get("finish_reason") == "error":
        text = raw.decode("utf-8", errors="replace")
        message = _error_message(text, status) if data.get("error") else "reply carries no choice"
        raise UpstreamError(
            f"generation failed: {scrub(message)}", status=status, body=scrub(text[:500])
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
        logprobs=choice.get("logprobs"),
        generation_id=_text(data.get("id")),
        system_fingerprint=_text(data.get("system_fingerprint")),
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
