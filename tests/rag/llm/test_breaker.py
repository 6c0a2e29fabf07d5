"""The circuit breaker: opens after N failures, skips without calling, probes once after the cool-down."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag.errors import CircuitOpen
from rag.llm.breaker import BreakerState, CircuitBreaker
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ManualClock, ask, metric, openai_entry


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_states_with_a_manual_clock() -> None:
    clock = Clock()
    changes: list[BreakerState] = []
    breaker = CircuitBreaker("p", failure_threshold=3, cooldown_s=10, clock=clock, on_change=changes.append)

    async def main() -> None:
        for _ in range(3):
            breaker.release(await breaker.acquire(0), "failure")
        assert breaker.state is BreakerState.OPEN and not breaker.available()
        with pytest.raises(CircuitOpen):
            await breaker.acquire(5)
        clock.now += 10
        assert breaker.state is BreakerState.HALF_OPEN
        probe = await breaker.acquire(0)
        assert probe.probe
        with pytest.raises(CircuitOpen):  # one probe at a time
            await breaker.acquire(0)
        breaker.release(probe, "failure")
        assert breaker.state is BreakerState.OPEN
        clock.now += 10
        breaker.release(await breaker.acquire(0), "success")
        assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 0

    asyncio.run(main())
    assert changes == [
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.OPEN,
        BreakerState.HALF_OPEN,
        BreakerState.CLOSED,
    ]


def test_neutral_outcomes_do_not_count_and_a_success_resets() -> None:
    breaker = CircuitBreaker("p", failure_threshold=2, cooldown_s=10)

    async def main() -> None:
        breaker.release(await breaker.acquire(0), "failure")
        breaker.release(await breaker.acquire(0), "neutral")
        breaker.release(await breaker.acquire(0), "success")
        breaker.release(await breaker.acquire(0), "failure")
        assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 1

    asyncio.run(main())


def test_unproven_provider_gets_a_bounded_number_of_calls_in_flight() -> None:
    breaker = CircuitBreaker("p", failure_threshold=3, cooldown_s=10)

    async def main() -> None:
        tickets = [await breaker.acquire(0) for _ in range(3)]
        with pytest.raises(CircuitOpen):  # the fourth would have to wait, and may not
            await breaker.acquire(0)
        waiter = asyncio.create_task(breaker.acquire(5))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        breaker.release(tickets[0], "success")  # proven: everyone may go
        ticket = await asyncio.wait_for(waiter, 1)
        for t in [*tickets[1:], ticket]:
            breaker.release(t, "success")

    asyncio.run(main())


def test_breaker_opens_skips_and_probes_against_a_failing_server(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    bad, good = fakes[0], fakes[1]
    bad.mode({"kind": "status", "status": 500})
    clock = ManualClock()
    gateway = gateway_factory(
        {"bad": openai_entry(bad), "good": openai_entry(good)},
        breaker_failure_threshold=3,
        breaker_cooldown_s=30,
        llm_max_attempts=1,
        clock=clock,
    )

    async def main() -> None:
        async with gateway:
            for _ in range(3):
                assert (await gateway.complete(ask())).provider == "good"
            assert bad.count() == 3
            assert gateway.status()[0]["breaker"] == "open" and not gateway.status()[0]["available"]
            for _ in range(5):
                response = await gateway.complete(ask())
                assert response.provider == "good" and response.fallbacks == ["bad:provider_circuit_open"]
            assert bad.count() == 3, "an open breaker must not let calls through"
            assert metric(gateway, "rag_llm_breaker_state", provider="bad", model="fake-model") == 2

            clock.advance(29)
            await gateway.complete(ask())
            assert bad.count() == 3, "still cooling down"
            clock.advance(1)
            await gateway.complete(ask())
            assert bad.count() == 4, "one probe after the cool-down"
            await gateway.complete(ask())
            assert bad.count() == 4, "the failed probe re-opened the breaker"

            bad.mode({"kind": "ok"})
            clock.advance(30)
            assert (await gateway.complete(ask())).provider == "bad"
            assert gateway.status()[0]["breaker"] == "closed"
            assert metric(gateway, "rag_llm_breaker_state", provider="bad", model="fake-model") == 0

    asyncio.run(main())


def test_200_concurrent_requests_against_a_dead_provider(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    bad, good = fakes[0], fakes[1]
    bad.mode({"kind": "status", "status": 500})
    threshold, attempts = 5, 3
    gateway = gateway_factory(
        {"bad": openai_entry(bad), "good": openai_entry(good)},
        breaker_failure_threshold=threshold,
        llm_max_attempts=attempts,
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            responses = await asyncio.gather(*(gateway.complete(ask()) for _ in range(200)))
            elapsed = time.monotonic() - started
        assert all(r.provider == "good" for r in responses)
        assert elapsed < 10

    asyncio.run(main())
    calls = bad.count()
    assert threshold <= calls <= 2 * threshold, f"{calls} calls reached the dead provider"
    assert good.count() == 200
