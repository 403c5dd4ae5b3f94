"""`run.rate_limit`'s token buckets, on a clock the test moves."""

from __future__ import annotations

import asyncio

from extract.runner.rate import Bucket, RateLimit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_bucket_refills_continuously_up_to_a_minute() -> None:
    clock = Clock()
    bucket = Bucket(60, clock)
    bucket.take(60)
    assert bucket.wait_for(1) == 1.0
    clock.now = 0.5
    assert bucket.wait_for(1) == 0.5
    clock.now = 600
    assert bucket.wait_for(60) == 0 and bucket.level == 60  # refilled, never beyond a minute
    assert bucket.wait_for(1_000) == 0  # bigger than the bucket: a full one is enough


def test_requests_and_tokens_both_limit() -> None:
    clock = Clock()
    rate = RateLimit(requests_per_minute=120, tokens_per_minute=600, clock=clock,
                     sleep=clock.sleep)  # fmt: skip

    async def go() -> None:
        for _ in range(3):
            await rate.acquire(200)  # tokens bind: 600 a minute is 3 such requests
        await rate.acquire(200)

    asyncio.run(go())
    assert clock.slept == [20.0]  # 200 tokens at 10 a second
    unlimited = RateLimit(None, None)
    assert not unlimited.active
    asyncio.run(unlimited.acquire(10**9))
