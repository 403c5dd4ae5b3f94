"""The floor: a bare asyncio + aiohttp loop doing exactly the requests extract does, and no more.

Same bodies byte for byte (see common.py), the same concurrency bound, the same transport retry
(429 honouring Retry-After, 408/5xx/dropped connections/an error inside an HTTP 200 with full-jitter
exponential backoff, `MAX_RETRIES` times) and the same re-ask on unusable content, validated with
the same Pydantic model. It writes nothing but its counts: what the HTTP work alone costs.

    python -m bench.floor --base-url URL --rows rows.csv --concurrency 64 --out outcome.json
"""

from __future__ import annotations

import asyncio
import json
import random
from typing import Any

import aiohttp

from bench import common, schema, settings


class _Failed(Exception):
    """The row cannot be done: transport retries ran out or the API refused it."""


class _Transient(Exception):
    def __init__(self, retry_after: float | None = None) -> None:
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


class Floor:
    def __init__(self, session: aiohttp.ClientSession, url: str, rf: dict[str, Any]) -> None:
        self.session = session
        self.url = url
        self.rf = rf
        self.outcome = common.Outcome()

    async def _once(self, payload: bytes) -> dict[str, Any]:
        try:
            async with self.session.post(self.url, data=payload) as resp:
                raw = await resp.read()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except (aiohttp.ClientError, TimeoutError) as e:
            raise _Transient() from e
        if status == 429:
            raise _Transient(_retry_after(retry_after))
        if status == 408 or status >= 500:
            raise _Transient()
        if status != 200:
            raise _Failed(f"HTTP {status}")
        data: dict[str, Any] = json.loads(raw)
        choices = data.get("choices") or [{}]
        if data.get("error") or choices[0].get("finish_reason") == "error":
            raise _Transient()
        return data

    async def send(self, payload: bytes) -> dict[str, Any]:
        for retry in range(settings.MAX_RETRIES + 1):
            self.outcome.requests += 1
            try:
                return await self._once(payload)
            except _Transient as e:
                if retry == settings.MAX_RETRIES:
                    raise _Failed("transport retries exhausted") from e
                wait = e.retry_after
                if wait is None:
                    wait = random.uniform(0, min(60.0, settings.BACKOFF_S * 2**retry))
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")

    async def row(self, row: dict[str, str]) -> None:
        first = common.first_turn(row)
        messages = first
        try:
            for _ in range(settings.MAX_ATTEMPTS):
                data = await self.send(common.encode(common.request_body(self.rf, messages)))
                message = data["choices"][0].get("message") or {}
                if message.get("refusal"):
                    self.outcome.failed("Refusal")
                    return
                content = message.get("content")
                instance, problem = common.check_answer(content, schema.BenchTicket)
                if instance is not None:
                    self.outcome.valid += 1
                    return
                messages = common.reask(first, content, problem)
            self.outcome.failed("InvalidOutput")
        except _Failed as e:
            self.outcome.failed(str(e))


async def main() -> None:
    args = common.arguments(__doc__ or "")
    rf = common.load_response_format(args.rows)
    clock = common.Clock()
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=0)
    async with aiohttp.ClientSession(
        connector=connector,
        headers={"Content-Type": "application/json"},
        timeout=aiohttp.ClientTimeout(total=300),
    ) as session:
        floor = Floor(session, args.base_url.rstrip("/") + "/chat/completions", rf)
        slots = asyncio.Semaphore(args.concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def one(row: dict[str, str]) -> None:
            try:
                await floor.row(row)
            finally:
                slots.release()

        # Take a slot before reading the next row: rows stream in, memory stays flat.
        for row in common.read_rows(args.rows):
            await slots.acquire()
            task = asyncio.create_task(one(row))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.wait(set(tasks))
    floor.outcome.run_s = clock.seconds()
    common.write_outcome(args.out, floor.outcome)


if __name__ == "__main__":
    asyncio.run(main())
