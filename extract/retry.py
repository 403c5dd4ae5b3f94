"""Transport retry: one tenacity policy for every request.

Only `TransientError` (429, 408, 5xx, timeouts, dropped connections, an error inside an HTTP 200)
is retried, decided by class. A 429's `Retry-After` is honoured; otherwise exponential backoff with
full jitter. Content failures are *not* handled here: they are re-asked by the runner's own loop.
"""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
)
from tenacity.wait import wait_base, wait_random_exponential

from .errors import RateLimited, TransientError

__all__ = ["transport_retrying"]


class _wait_retry_after(wait_base):
    """Wait what the server asked for in Retry-After, else fall back to jittered backoff."""

    def __init__(self, fallback: wait_base, cap: float):
        self.fallback = fallback
        self.cap = cap

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            return min(exc.retry_after, self.cap)
        return self.fallback(retry_state)


def transport_retrying(
    max_retries: int, *, initial: float = 0.5, max_wait: float = 60.0
) -> AsyncRetrying:
    """A tenacity controller: `max_retries` retries after the first try, then re-raise."""
    return AsyncRetrying(
        retry=retry_if_exception_type(TransientError),
        stop=stop_after_attempt(max_retries + 1),
        wait=_wait_retry_after(
            wait_random_exponential(multiplier=initial, max=max_wait), max_wait * 4
        ),
        reraise=True,
    )
