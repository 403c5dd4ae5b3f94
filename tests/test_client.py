from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from extract.errors import (
    ConnectionFailed,
    RateLimited,
    RowRejected,
    RunStopped,
    ServerError,
    UpstreamError,
)
from extract.providers.testserver import ServerThread
from extract.transport.base import Completion, encode_body
from extract.transport.http import HttpTransport
from extract.transport.replies import retry_after_seconds

SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
    "additionalProperties": False,
}
BODY: dict[str, Any] = {
    "model": "m",
    "seed": 1,
    "messages": [{"role": "user", "content": "hi"}],
    "response_format": {
        "type": "json_schema",
        "json_schema": {"name": "T", "strict": True, "schema": SCHEMA},
    },
}


def call(
    server: ServerThread, key: str | None = "sk-test-secret", body: dict[str, Any] = BODY
) -> Completion:
    async def go() -> Completion:
        async with HttpTransport(server.base_url, api_key=key, timeout_s=5) as client:
            return await client.complete(encode_body(body))

    return asyncio.run(go())


def test_completion_fields(server: ServerThread) -> None:
    c = call(server)
    assert c.finish_reason == "stop"
    assert c.provider == "fake"
    assert c.model == "m"
    assert c.content is not None and c.content.startswith('{"name": ')
    assert c.usage.prompt_tokens > 0 and c.usage.completion_tokens > 0
    assert c.usage.cost_usd is not None and c.usage.cost_usd > 0
    assert c.latency_ms > 0


@pytest.mark.parametrize(
    ("fault", "error", "status"),
    [
        ("rate_limit", RateLimited, 429),
        ("server_error", ServerError, None),
        ("timeout", ServerError, 408),
        ("upstream_error", UpstreamError, 200),
        ("bad_request", RowRejected, 400),
        ("forbidden", RowRejected, 403),
        ("payment", RunStopped, 402),
        ("drop", ConnectionFailed, None),
    ],
)
def test_each_failure_is_typed(
    server: ServerThread, fault: str, error: type[Exception], status: int | None
) -> None:
    server.configure(faults={fault: 1.0}, retry_after="3")
    with pytest.raises(error) as e:
        call(server)
    if status is not None:
        assert getattr(e.value, "status", None) == status
    if fault == "rate_limit":
        assert isinstance(e.value, RateLimited) and e.value.retry_after == 3.0


def test_401_does_not_leak_the_key(server: ServerThread) -> None:
    with pytest.raises(RunStopped) as e:
        call(server, key="sk-wrong-key")
    assert e.value.status == 401
    assert "sk-wrong-key" not in str(e.value) and "sk-wrong-key" not in e.value.body


def test_connection_refused() -> None:
    async def go() -> None:
        async with HttpTransport("http://127.0.0.1:9/v1", api_key=None, timeout_s=2) as client:
            await client.complete(encode_body(BODY))

    with pytest.raises(ConnectionFailed, match="connection failed"):
        asyncio.run(go())


def test_retry_after_forms() -> None:
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("garbage") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_body_encoder_matches_full_encoding() -> None:
    from extract.transport.base import BodyEncoder, encode_body

    template = {k: v for k, v in BODY.items() if k != "messages"} | {"max_tokens": 100}
    bodies = BodyEncoder(template)
    messages = [{"role": "user", "content": "héllo \"quoted\""}]
    assert bodies.encode(messages, 100) == encode_body({**template, "messages": messages})
    assert json.loads(bodies.encode(messages, 200)) == {**template, "messages": messages,
                                                        "max_tokens": 200}
