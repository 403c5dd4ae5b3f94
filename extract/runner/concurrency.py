"""How many requests may be in flight: `run.concurrency` at most, fewer while the API says 429.

A provider's headroom is invisible (OpenRouter sends rate-limit headers only on 429s; a provider
that caps concurrent requests sends nothing until the one over its cap), so the limit learns it
from the 429s themselves: a 429 that arrives while N requests are in flight says that the other
N - 1 were as many as the provider took, and the limit drops to that, never by more. It grows back
by one slot per limit's worth of successes, four times slower once a 429 showed where the ceiling
is, so a capped provider sees a probe above its cap now and then, not a steady stream of them.
A run starts at a few slots and doubles them per round of answers until the first 429 or
`run.concurrency` (TCP's slow start): a cap far below `run.concurrency` then costs about as many
429s as the cap, not as `run.concurrency`.
A slot is held only while a request is sent: a row waiting out a backoff frees it.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["START_SLOTS", "AdaptiveLimit"]

#: once a 429 showed the ceiling, growth above it is this many times slower
PROBE_SLOWDOWN = 4
#: requests in flight at the start of a run, doubled per round until the first 429
START_SLOTS = 4


class AdaptiveLimit:
    """An asyncio semaphore whose size moves between 1 and `maximum` (AIMD)."""

    def __init__(self, maximum: int, *, start: int | None = None):
        self.maximum = maximum
        self.limit = float(min(maximum, start or maximum))
        self.in_use = 0
        #: the limit a 429 last brought it down to: the provider's ceiling, as far as is known
        self.ceiling: float | None = None
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
            elif waiter in self._waiters:  # `_wake` drops waiters cancelled before their turn
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
        """A 429 arrived for a request still holding its slot: the others in flight are as
        many as the provider takes now."""
        self.limit = max(1.0, min(self.limit, float(self.in_use - 1)))
        self.ceiling = self.limit

    def succeeded(self) -> None:
        """A request succeeded: grow by one slot per `limit` successes (slower above the known
        ceiling), up to the maximum."""
        if self.limit < self.maximum:
            if self.ceiling is None:
                step = 1.0  # slow start: the limit doubles per round until the first 429
            elif self.limit >= self.ceiling:
                step = 1 / self.limit / PROBE_SLOWDOWN
            else:
                step = 1 / self.limit
            self.limit = min(float(self.maximum), self.limit + step)
            self._wake()
