from __future__ import annotations

import asyncio

from extract.runner.concurrency import AdaptiveLimit


def test_halves_on_429_once_per_cooldown_and_grows_back() -> None:
    limit = AdaptiveLimit(64, cooldown_s=3600)
    for _ in range(20):
        limit.succeeded()
    limit.rate_limited()  # a stray 429 among successes says nothing about load
    assert limit.slots == 64
    for _ in range(10):
        limit.rate_limited()  # now a quarter of the answers, and more: halve, once per burst
    assert limit.slots == 32
    for _ in range(33):
        limit.succeeded()
    assert limit.slots == 33
    for _ in range(10_000):
        limit.succeeded()
    assert limit.slots == 64
    small = AdaptiveLimit(4, cooldown_s=0)
    for _ in range(30):
        small.rate_limited()
    assert small.slots == 1


def test_in_flight_never_exceeds_the_limit() -> None:
    async def go() -> tuple[int, int]:
        limit = AdaptiveLimit(8, cooldown_s=0)
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
