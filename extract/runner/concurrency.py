"""How many rows may be in flight: `run.concurrency` at most, fewer while the API rate-limits.

A provider's headroom is invisible (OpenRouter sends rate-limit headers only on 429s), so the
limit adapts the way TCP does: it halves when 429s become a real share of the answers (at least
`MIN_429` of them and a quarter of the answers since the last change; at most once per cooling
period, so one burst counts once), and grows back by one slot per limit's worth of successes. A
stray 429 among successes only waits out its Retry-After: it says nothing about load.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["AdaptiveLimit"]

#: 429s needed, and their share of the answers, before the limit is halved
MIN_429 = 3
SHARE_429 = 0.25


class AdaptiveLimit:
    """An asyncio semaphore whose size moves between 1 and `maximum` (AIMD)."""

    def __init__(self, maximum: int, *, cooldown_s: float = 1.0):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_use = 0
        self.cooldown_s = cooldown_s
        self._last_decrease = float("-inf")
        self._ok = 0
        self._limited = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def slots(self) -> int:
        return max(1, int(self.limit))

    async def acquire(self) -> None:
        if self.in_use < self.slots and not self._waiters:
            self.in_use += 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.in_use -= 1  # granted just as it was cancelled: hand the slot on
                self._wake()
            else:
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        self.in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_use < self.slots:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                waiter.set_result(None)

    def rate_limited(self) -> None:
        """A 429 arrived: halve the limit if 429s are now a real share of the answers."""
        self._limited += 1
        now = time.monotonic()
        if (
            self._limited >= MIN_429
            and self._limited >= SHARE_429 * (self._limited + self._ok)
            and now - self._last_decrease >= self.cooldown_s
        ):
            self._last_decrease = now
            self.limit = max(1.0, self.limit / 2)
            self._limited = self._ok = 0

    def succeeded(self) -> None:
        """A request succeeded: grow by one slot per `limit` successes, up to the maximum."""
        self._ok += 1
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
            self._wake()
