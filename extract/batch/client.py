"""The Batch API over HTTP: create, get, list and paged results, on one aiohttp session.

Each call returns the decoded JSON object or raises the APIError subclass its status calls for
(the same classes as chat completions: 401/402 stop the run, 429/5xx are transient). A create is
never retried here: whether a lost answer means a stored batch is for the caller to find out.
The API key lives in a header and is scrubbed from anything echoed into an error.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson

from ..errors import ConnectionFailed, UpstreamError
from ..transport.http import Secret, json_headers
from ..transport.replies import status_error

__all__ = ["BatchClient"]


class BatchClient:
    """`async with BatchClient(url, api_key=...) as c: await c.create(body)`."""

    def __init__(
        self,
        url: str,
        *,
        api_key: str | None,
        timeout_s: float = 300,
        headers: dict[str, str] | None = None,
    ):
        self.url = url.rstrip("/")
        self._scrub = Secret(api_key).scrub
        self._headers = json_headers(api_key, headers)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> BatchClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _call(
        self, method: str, path: str, *, body: bytes | None = None, params: Any = None
    ) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("BatchClient used outside 'async with'")
        try:
            async with self._session.request(
                method, self.url + path, data=body, params=params
            ) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError as e:
            timeout = self._timeout.total
            raise ConnectionFailed(f"batch request timed out after {timeout:g} s") from e
        except aiohttp.ClientError as e:
            raise ConnectionFailed(
                f"batch request failed: {self._scrub(str(e)) or type(e).__name__}"
            ) from e
        if status not in (200, 201, 202):
            text = self._scrub(raw.decode("utf-8", errors="replace"))
            raise status_error(status, text, retry_after)
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as e:
            raise UpstreamError("the batch API's answer is not JSON", status=status) from e
        if not isinstance(data, dict):
            raise UpstreamError("the batch API's answer is not a JSON object", status=status)
        return data

    async def create(self, body: bytes) -> dict[str, Any]:
        """POST a batch (the body from `lines.create_body`); the batch object."""
        return await self._call("POST", "", body=body)

    async def get(self, batch_id: str) -> dict[str, Any]:
        """The batch object: status, counts, usage (and inline results on older APIs)."""
        return await self._call("GET", f"/{batch_id}")

    async def list(self, *, created_after: float, after: str | None = None) -> dict[str, Any]:
        """One page of the key's batches created after a moment, newest first."""
        params = [("limit", "100"), ("created_after", str(int(created_after)))]
        if after is not None:
            params.append(("after", after))
        return await self._call("GET", "", params=params)

    async def results(self, batch_id: str, cursor: str | None = None) -> dict[str, Any]:
        """One page of a finished batch's result lines."""
        params = [("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
        return await self._call("GET", f"/{batch_id}/results", params=params)
