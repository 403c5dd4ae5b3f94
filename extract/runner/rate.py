"""`run.rate_limit`: requests and tokens per minute, as token buckets, across every retry.

Each bucket holds up to a minute's allowance and refills continuously. A request takes one from
the requests bucket and its estimated size (about four characters a token, plus the answer's
`max_tokens` when set) from the tokens bucket, waiting until both have enough; a request bigger
than a whole minute's tokens waits for a full bucket rather than forever. Retries and re-asks go
through the same buckets, so the limit holds whatever fails.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["Bucket", "RateLimit"]


class Bucket:
    """`per_minute` units, refilled continuously; `clock` is injectable for tests."""

    def __init__(self, per_minute: float, clock: Callable[[], float] = time.monotonic):
        self.capacity = per_minute
        self.rate = per_minute / 60.0
        self.level = per_minute
        self.clock = clock
        self.stamp = clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (at most a full bucket) is available; 0 when it is now."""
        self._refill()
        need = min(amount, self.capacity)
        return max(0.0, (need - self.level) / self.rate)

    def take(self, amount: float) -> None:
        self._refill()
        self.level -= min(amount, self.capacity)


class RateLimit:
    """Both buckets of `run.rate_limit` (either may be None: not limited)."""

    def __init__(
        self,
        requests_per_minute: float | None,
        tokens_per_minute: float | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.requests = Bucket(requests_per_minute, clock) if requests_per_minute else None
        self.tokens = Bucket(tokens_per_minute, clock) if tokens_per_minute else None
        self._sleep = sleep
        self._lock = asyncio.Lock()

    @property
    def active(self) -> bool:
        return self.requests is not None or self.tokens is not None

    async def acquire(self, tokens: float) -> None:
        """Wait until one request of about `tokens` tokens may go, and take it."""
        if not self.active:
            return
        async with self._lock:  # first come, first served
            while True:
                wait = max(
                    self.requests.wait_for(1) if self.requests else 0.0,
                    self.tokens.wait_for(tokens) if self.tokens else 0.0,
                )
                if wait <= 0:
                    break
                await self._sleep(wait)
            if self.requests:
                self.requests.take(1)
            if self.tokens:
                self.tokens.take(tokens)
