"""How many rows may be in flight: `run.concurrency` at most, fewer while the API rate-limits.

A provider's headroom is invisible (OpenRouter sends rate-limit headers only on 429s), so the
limit adapts the way TCP does: it halves on a 429 (at most once per cooling period, so one burst
of 429s counts once) and grows back by one slot per limit's worth of successes.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque

__all__ = ["AdaptiveLimit"]


class AdaptiveLimit:
    """An asyncio semaphore whose size moves between 1 and `maximum` (AIMD)."""

    def __init__(self, maximum: int, *, cooldown_s: float = 1.0):
        self.maximum = maximum
        self.limit = float(maximum)
        self.in_use = 0
        self.cooldown_s = cooldown_s
        self._last_decrease = float("-inf")
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
        """A 429 arrived: halve the limit, unless it was halved within the cooling period."""
        now = time.monotonic()
        if now - self._last_decrease >= self.cooldown_s:
            self._last_decrease = now
            self.limit = max(1.0, self.limit / 2)

    def succeeded(self) -> None:
        """A request succeeded: grow by one slot per `limit` successes, up to the maximum."""
        if self.limit < self.maximum:
            self.limit = min(float(self.maximum), self.limit + 1 / self.limit)
            self._wake()
