"""A batch's lines: the create body, custom ids, and each result line turned into a Completion
or an error of the one exception tree.

A line's answer goes through exactly the parsing a sync reply does (`transport.replies`), so
validation, re-asks and failure classes are the same in both modes. A line's own error is
classified by its canonical `error_type`: capacity and server trouble is transient (the line is
submitted again), anything else rejects the row.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any

import orjson

from ..errors import APIError, RowRejected, ServerError
from ..transport.base import Completion
from ..transport.replies import parse_reply

__all__ = [
    "ENDPOINT",
    "body_hash",
    "create_body",
    "custom_id",
    "has_inline_data",
    "line_outcome",
]

ENDPOINT = "/v1/chat/completions"

#: error types (OpenRouter's canonical ones and OpenAI's) that a resubmission may not meet again
_TRANSIENT = {
    "rate_limit_exceeded", "rate_limit_error", "server_error", "timeout", "overloaded",
    "overloaded_error", "service_unavailable", "internal_error", "api_error",
}  # fmt: skip

# an image or file part given as a data: URI (batches take media by http(s) URL only)
_INLINE = re.compile(rb'"(?:url|file_data)":"data:')


def body_hash(body: bytes) -> str:
    """The identity of a request body in the batch bookkeeping."""
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def custom_id(batch_key: str, index: int, request_hash: str) -> str:
    """A line's custom id: the batch's nonce, the line's place and its row's request hash
    (under the 64 characters a third-party client saw as the limit)."""
    return f"{batch_key}-{index}-{request_hash[:24]}"


def has_inline_data(body: bytes) -> bool:
    """Whether the body carries an image or file inline, which batches refuse."""
    return _INLINE.search(body) is not None


def create_body(model: str, lines: Sequence[tuple[str, bytes]]) -> bytes:
    """The create request: `endpoint` and `model` before `requests` (the API stream-parses the
    body and refuses it otherwise); each request's body spliced in as the bytes a sync request
    would send."""
    head = orjson.dumps({"endpoint": ENDPOINT, "model": model, "completion_window": "24h"})
    parts = [
        b'{"custom_id":' + orjson.dumps(cid) + b',"body":' + body + b"}" for cid, body in lines
    ]
    return head[:-1] + b',"requests":[' + b",".join(parts) + b"]}"


def line_outcome(line: dict[str, Any], latency_ms: float) -> Completion | APIError:
    """One result line as the Completion a sync request would have got, or its error."""
    response = line.get("response")
    if isinstance(response, dict):
        status = response.get("status_code")
        raw = orjson.dumps(response.get("body"))
        try:
            return parse_reply(status if isinstance(status, int) else 200, raw, None, latency_ms)
        except APIError as e:
            return e
    error = line.get("error")
    if not isinstance(error, dict):
        return ServerError("the batch line carries neither a response nor an error")
    message = str(error.get("message") or "the batch line failed")
    kind = str(error.get("error_type") or error.get("type") or "")
    text = orjson.dumps(error).decode()[:500]
    if kind in _TRANSIENT or "server" in kind or "rate" in kind:
        return ServerError(f"batch line: {kind}: {message}", body=text)
    return RowRejected(f"batch line: {kind or 'error'}: {message}", body=text)
