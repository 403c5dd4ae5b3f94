from __future__ import annotations

import asyncio
import time

from extract.errors import RateLimited, RowRejected, ServerError
from extract.transport.retry import backoff, with_retries


def run_calls(errors: list[BaseException | None], max_retries: int) -> tuple[object, int, float]:
    calls = 0

    async def call() -> str:
        nonlocal calls
        error = errors[calls]
        calls += 1
        if error is not None:
            raise error
        return "ok"

    started = time.monotonic()
    try:
        result: object = asyncio.run(with_retries(call, max_retries, initial=0.001))
    except Exception as e:
        result = e
    return result, calls, time.monotonic() - started


def test_transient_errors_are_retried_then_succeed() -> None:
    result, calls, _ = run_calls([ServerError("502"), ServerError("503"), None], 6)
    assert (result, calls) == ("ok", 3)


def test_gives_up_after_max_retries_with_the_last_error() -> None:
    errors: list[BaseException | None] = [ServerError(f"50{i}") for i in range(4)]
    result, calls, _ = run_calls(errors, 3)
    assert calls == 4 and isinstance(result, ServerError) and str(result) == "503"
    result, calls, _ = run_calls([ServerError("500")], 0)
    assert calls == 1 and isinstance(result, ServerError)


def test_terminal_errors_are_not_retried() -> None:
    result, calls, _ = run_calls([RowRejected("400", status=400), None], 6)
    assert calls == 1 and isinstance(result, RowRejected)


def test_retry_after_is_honoured() -> None:
    result, calls, seconds = run_calls(
        [RateLimited("429", retry_after=0.3), RateLimited("429", retry_after=0.2), None], 6
    )
    assert (result, calls) == ("ok", 3)
    assert seconds >= 0.5


def test_backoff_grows_exponentially_with_full_jitter() -> None:
    for retry in range(1, 8):
        waits = [backoff(ServerError("x"), retry, 0.5) for _ in range(200)]
        assert min(waits) >= 0 and max(waits) <= min(60, 0.5 * 2 ** (retry - 1))
    assert backoff(RateLimited("x", retry_after=7), 1, 0.5) == 7
    assert backoff(RateLimited("x", retry_after=None), 1, 0.5) <= 0.5
