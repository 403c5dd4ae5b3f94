"""Transport retry: one tenacity policy for every request.

Only `TransientError` (429, 408, 5xx, timeouts, dropped connections, an error inside an HTTP 200)
is retried, decided by class. A 429's `Retry-After` is honoured; otherwise exponential backoff with
full jitter. Content failures are *not* handled here: they are re-asked by the runner's own loop.

A failure that repeats to the letter for the identical request (an HTTP 500 or an error inside a
200 with the same message, seen twice) is not load: llama-server answers 500 "does not match the
expected peg-native format" to the same request every time at temperature 0. Sending it a third
time unchanged only burns the retries and their backoff, so it becomes `RepeatedFailure`, which
the runner re-asks as a changed request (and records, when the attempts run out). 429, 502, 503,
408 and dropped connections are load and availability: those are always retried.

The first try runs outside tenacity: a controller costs about 27 microseconds to build and drive,
a tenth of the whole per-row budget, and most requests succeed the first time. Only a request that
failed enters the tenacity loop, which continues the same backoff sequence.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from ..errors import RateLimited, RepeatedFailure, ServerError, TransientError, UpstreamError

__all__ = ["backoff", "transport_retrying", "with_retries"]

T = TypeVar("T")

#: no backoff wait is longer than this (seconds); a Retry-After may ask for up to 4 times more
MAX_WAIT_S = 60.0
#: 429s do not use up `max_retries` (a provider's limit slows a run down, it never fails a row):
#: a request is retried after them for this long in all (seconds)
RATE_LIMIT_PATIENCE_S = 900.0


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


class _Failures(stop_base):
    """Stop once the failures other than 429 exceed the retries."""

    def __init__(self, failures: Callable[[], int], max_retries: int):
        self.failures = failures
        self.max_retries = max_retries

    def __call__(self, retry_state: RetryCallState) -> bool:
        return self.failures() > self.max_retries


def transport_retrying(
    max_retries: int,
    *,
    initial: float = 0.5,
    done: int = 0,
    failures: Callable[[], int] | None = None,
) -> AsyncRetrying:
    """A tenacity controller: up to `max_retries` retries, then the last error is re-raised.

    With `failures` (how many failures other than 429 there were so far), 429s do not count
    against `max_retries`; the retries then stop after RATE_LIMIT_PATIENCE_S in all.
    """
    stop: stop_base
    if failures is None:
        stop = stop_after_attempt(max_retries + 1)
    else:
        stop = stop_any(stop_after_delay(RATE_LIMIT_PATIENCE_S), _Failures(failures, max_retries))
    return AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop,
        wait=_wait(initial, done),
        reraise=True,
    )


def _signature(error: TransientError) -> tuple[str, int | None, str] | None:
    """What identifies a failure that may be deterministic; None for load and availability."""
    if isinstance(error, UpstreamError) or (isinstance(error, ServerError) and error.status == 500):
        return (type(error).__name__, error.status, str(error))
    return None


class _Repeats(Generic[T]):
    """Raises RepeatedFailure when the same deterministic-looking failure comes twice in a row."""

    def __init__(self, call: Callable[[], Awaitable[T]]):
        self.call = call
        self.last: tuple[str, int | None, str] | None = None
        #: failures so far that were not 429s (those alone use up the retries)
        self.failures = 0

    async def __call__(self) -> T:
        try:
            return await self.call()
        except TransientError as error:
            if not isinstance(error, RateLimited):
                self.failures += 1
            signature = _signature(error)
            if signature is not None and signature == self.last:
                raise RepeatedFailure(
                    f"the same failure twice for the identical request: {error}",
                    status=error.status,
                    body=error.body,
                ) from error
            self.last = signature
            raise


async def with_retries(call: Callable[[], Awaitable[T]], max_retries: int, *, initial: float) -> T:
    """Await `call()`, retrying it after a TransientError up to `max_retries` times (429s
    apart: they are retried for up to RATE_LIMIT_PATIENCE_S, whatever their number).

    Raises RepeatedFailure instead of a third identical try after the same 500 twice.
    """
    try:
        return await call()
    except TransientError as error:
        if max_retries == 0:
            raise
        first = error
    guarded = _Repeats(call)
    guarded.last = _signature(first)
    guarded.failures = 0 if isinstance(first, RateLimited) else 1
    await asyncio.sleep(backoff(first, 1, initial))
    retrying = transport_retrying(
        max_retries, initial=initial, done=1, failures=lambda: guarded.failures
    )
    async for attempt in retrying:
        with attempt:
            return await guarded()
    raise AssertionError("unreachable: tenacity re-raises the last error")
