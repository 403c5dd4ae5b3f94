"""Transport retry: one tenacity policy for every request.

Only `TransientError` (429, 408, 5xx, timeouts, dropped connections, an error inside an HTTP 200)
is retried, decided by class. A 429's `Retry-After` is honoured; otherwise exponential backoff with
full jitter. Content failures are *not* handled here: they are re-asked by the runner's own loop.

The first try runs outside tenacity: a controller costs about 27 microseconds to build and drive,
a tenth of the whole per-row budget, and most requests succeed the first time. Only a request that
failed enters the tenacity loop, which continues the same backoff sequence.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_base

from .errors import RateLimited, TransientError

__all__ = ["backoff", "transport_retrying", "with_retries"]

T = TypeVar("T")

#: no backoff wait is longer than this (seconds); a Retry-After may ask for up to 4 times more
MAX_WAIT_S = 60.0


def backoff(error: BaseException | None, retry: int, initial: float) -> float:
    """Seconds to wait before retry number `retry` (1, 2, ...) after `error`."""
    if isinstance(error, RateLimited) and error.retry_after is not None:
        return min(error.retry_after, MAX_WAIT_S * 4)
    return random.uniform(0, min(MAX_WAIT_S, initial * 2 ** (retry - 1)))


class _wait(wait_base):
    """tenacity's wait: `backoff`, with the retry count shifted by the tries already made."""

    def __init__(self, initial: float, done: int):
        self.initial = initial
        self.done = done

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        error = outcome.exception() if outcome is not None else None
        return backoff(error, retry_state.attempt_number + self.done, self.initial)


def transport_retrying(max_retries: int, *, initial: float = 0.5, done: int = 0) -> AsyncRetrying:
    """A tenacity controller: up to `max_retries` retries, then the last error is re-raised."""
    return AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(max_retries + 1),
        wait=_wait(initial, done),
        reraise=True,
    )


async def with_retries(call: Callable[[], Awaitable[T]], max_retries: int, *, initial: float) -> T:
    """Await `call()`, retrying it after a TransientError up to `max_retries` times."""
    try:
        return await call()
    except TransientError as error:
        if max_retries == 0:
            raise
        await asyncio.sleep(backoff(error, 1, initial))
    async for attempt in transport_retrying(max_retries - 1, initial=initial, done=1):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity re-raises the last error")
