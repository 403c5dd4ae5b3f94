"""The HTTP transport: one chat-completions request over a pooled aiohttp session.

Built on aiohttp directly rather than httpx: on this kind of machine httpx 0.28's pool costs
33-42 ms of CPU per request at concurrency 128 and the httpx-aiohttp adapter about twice the bare
aiohttp loop, while the benchmark goal allows 1.5x of that loop for the whole row
(see ../shared/reference/http-clients.md and bench/). This is the only module that does HTTP.

The API key lives in a header and is scrubbed from anything echoed into an error.
"""

from __future__ import annotations

import time

import aiohttp

from ..errors import ConnectionFailed
from .base import Completion
from .replies import parse_reply
from .stream import read_stream

__all__ = ["HttpTransport", "Secret", "json_headers"]


def json_headers(api_key: str | None, extra: dict[str, str] | None) -> dict[str, str]:
    """The headers of every request: JSON, the caller's, and the key as a bearer token."""
    headers = {"Content-Type": "application/json", **(extra or {})}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


class Secret:
    """An API key that never reaches an error: `scrub(text)` masks it."""

    def __init__(self, key: str | None):
        self._key = key

    def scrub(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text


class HttpTransport:
    """An OpenAI-compatible chat-completions client over one pooled aiohttp session.

    Use as `async with HttpTransport(...) as t: await t.complete(body)`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None,
        timeout_s: float = 300,
        connect_timeout_s: float | None = None,
        max_connections: int = 64,
        headers: dict[str, str] | None = None,
        stream: bool = False,
        idle_timeout_s: float | None = None,
    ):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._scrub = Secret(api_key).scrub
        self._headers = json_headers(api_key, headers)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=connect_timeout_s)
        #: model.stream: bodies are sent with `stream: true` and read as server-sent events
        self.stream = stream
        self._stream_timeout = aiohttp.ClientTimeout(
            total=timeout_s, sock_connect=connect_timeout_s, sock_read=idle_timeout_s
        )
        self._idle = idle_timeout_s
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpTransport:
        connector = aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, headers=self._headers
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, body: bytes) -> Completion:
        """Send one request. Raises an APIError subclass chosen by what went wrong."""
        if self._session is None:
            raise RuntimeError("HttpTransport used outside 'async with'")
        started = time.perf_counter()
        if self.stream:
            return await self._streamed(body, started)
        try:
            async with self._session.post(self.url, data=body) as resp:
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
        return parse_reply(status, raw, retry_after, latency_ms, self._scrub)

    async def _streamed(self, body: bytes, started: float) -> Completion:
        assert self._session is not None
        # the body is the one a whole reply is asked with, plus the two streaming fields
        body = body[:-1] + b',"stream":true,"stream_options":{"include_usage":true}}'
        try:
            async with self._session.post(
                self.url, data=body, timeout=self._stream_timeout
            ) as resp:
                if resp.status != 200:
                    raw = await resp.read()
                    retry_after = resp.headers.get("Retry-After")
                    return parse_reply(resp.status, raw, retry_after, 0.0, self._scrub)
                # leaving the block closes the connection: a runaway answer stops there
                return await read_stream(resp.content, started, self._scrub)
        except TimeoutError as e:
            total = self._timeout.total
            raise ConnectionFailed(
                f"no event for {self._idle:g} s, or no end after {total:g} s"
                if self._idle
                else f"request timed out after {total:g} s"
            ) from e
        except aiohttp.ClientError as e:
            raise ConnectionFailed(
                f"connection failed: {self._scrub(str(e)) or type(e).__name__}"
            ) from e
