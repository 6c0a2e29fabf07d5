"""Client-side rpm/tpm limits: wait a bounded time, or move to the next provider."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag.llm.ratelimit import RateLimiter, TokenBucket
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, metric, openai_entry


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_refills_at_its_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(60, clock=clock)  # one per second, bursts of 60
    assert bucket.wait_for(60) == 0
    bucket.take(60)
    assert bucket.wait_for(1) == 1.0
    clock.now += 0.5
    assert bucket.wait_for(1) == 0.5
    bucket.refund(10)
    assert bucket.wait_for(10) == 0


def test_limiter_takes_both_or_neither() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=100, tpm=120, clock=clock)

    async def main() -> None:
        assert await limiter.acquire(100, max_wait_s=0)
        assert not await limiter.acquire(100, max_wait_s=10)  # tpm needs 40 s
        assert limiter.requests is not None and limiter.requests.wait_for(99) == 0, "no request was taken"
        limiter.settle(100, 20)  # the call used 20 tokens, not 100
        assert await limiter.acquire(100, max_wait_s=0)
        limiter.cancel(100)  # never sent: all of it comes back
        assert limiter.tokens is not None and limiter.tokens.wait_for(100) == 0

    asyncio.run(main())


def test_limiter_waits_when_the_wait_is_short() -> None:
    limiter = RateLimiter(rpm=600, tpm=None)  # ten a second

    async def main() -> float:
        assert limiter.requests is not None
        limiter.requests.take(600)
        started = time.monotonic()
        assert await limiter.acquire(1, max_wait_s=1)
        return time.monotonic() - started

    assert 0.05 <= asyncio.run(main()) < 0.5


def test_a_cancelled_wait_gives_its_tokens_back() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=600, tpm=1000, clock=clock)  # ten requests a second

    async def main() -> None:
        assert limiter.requests is not None and limiter.tokens is not None
        limiter.requests.take(600)
        waiting = asyncio.create_task(limiter.acquire(100, max_wait_s=5))
        await asyncio.sleep(0.01)
        assert limiter.tokens.available == 900 and not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert limiter.tokens.available == 1000 and limiter.requests.available == 0

    asyncio.run(main())


def test_over_the_limit_moves_to_the_next_provider(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory(
        {"limited": openai_entry(fakes[0], rpm=2, rate_wait_s=0.0), "spare": openai_entry(fakes[1])}
    )

    async def main() -> list[str]:
        async with gateway:
            return [(await gateway.complete(ask())).provider for _ in range(3)]

    assert asyncio.run(main()) == ["limited", "limited", "spare"]
    assert fakes[0].count() == 2
    assert (
        metric(gateway, "rag_llm_calls_total", provider="limited", model="fake-model", outcome="throttled")
        == 1
    )
