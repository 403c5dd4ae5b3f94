from __future__ import annotations

import asyncio

from extract.runner.concurrency import AdaptiveLimit


def test_a_429_brings_the_limit_to_what_was_in_flight_and_growth_slows_above_it() -> None:
    limit = AdaptiveLimit(64)
    limit.in_use = 20  # a 429 for one of 20 requests in flight: the provider took 19
    limit.rate_limited()
    assert (limit.slots, limit.ceiling) == (19, 19)
    limit.in_use = 40  # never raised by a 429
    limit.rate_limited()
    assert limit.slots == 19
    limit.in_use = 0
    for _ in range(19 * 4):  # at the ceiling, a slot per four limits' worth of successes
        limit.succeeded()
    assert limit.slots == 19
    for _ in range(8):
        limit.succeeded()
    assert limit.slots == 20
    for _ in range(100_000):
        limit.succeeded()
    assert limit.slots == 64
    small = AdaptiveLimit(4)
    small.in_use = 1
    for _ in range(30):
        small.rate_limited()
    assert small.slots == 1


def test_in_flight_never_exceeds_the_limit() -> None:
    async def go() -> tuple[int, int]:
        limit = AdaptiveLimit(8)
        peak = 0
        done = 0

        async def work(i: int) -> None:
            nonlocal peak, done
            await limit.acquire()
            try:
                peak = max(peak, limit.in_use)
                assert limit.in_use <= limit.maximum
                if 20 <= i < 23:
                    limit.rate_limited()  # 8 -> 4 while others wait
                await asyncio.sleep(0.001)
                done += 1
            finally:
                limit.release()

        await asyncio.gather(*(work(i) for i in range(200)))
        assert limit.in_use == 0
        return peak, done

    peak, done = asyncio.run(go())
    assert (peak, done) == (8, 200)


def test_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def go() -> int:
        limit = AdaptiveLimit(1)
        await limit.acquire()
        waiter = asyncio.create_task(limit.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        limit.release()
        await asyncio.wait_for(limit.acquire(), 1)
        return limit.in_use

    assert asyncio.run(go()) == 1


def test_a_waiter_cancelled_just_before_a_release_leaves_cleanly() -> None:
    async def go() -> int:
        limit = AdaptiveLimit(1)
        await limit.acquire()
        waiter = asyncio.create_task(limit.acquire())
        await asyncio.sleep(0)
        waiter.cancel()
        limit.release()  # drops the cancelled waiter before its task has run again
        [outcome] = await asyncio.gather(waiter, return_exceptions=True)
        assert isinstance(outcome, asyncio.CancelledError)
        await asyncio.wait_for(limit.acquire(), 1)
        return limit.in_use

    assert asyncio.run(go()) == 1
