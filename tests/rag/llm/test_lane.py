"""A lane gives back what a call held (breaker ticket, budget reservation, rate-limit tokens)
exactly once, however the call ends: cancelled mid-call, or a stream whose reader went away."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from rag.llm.gateway import Gateway
from rag.llm.lane import Lane
from rag.llm.ratelimit import TokenBucket
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ManualClock, ask, metric, openai_entry

USAGE = {"prompt_tokens": 50, "completion_tokens": 10}


def _guarded(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> Gateway:
    """One paid, rate-limited provider on a clock that stands still, so bucket levels are exact."""
    entry = openai_entry(fakes[0], rpm=100, tpm=100_000, price_input_per_mtok=1.0, price_output_per_mtok=2.0)
    return gateway_factory({"a": entry}, budget_daily_usd=10.0, clock=ManualClock())


def _buckets(lane: Lane) -> tuple[TokenBucket, TokenBucket]:
    assert lane.limiter is not None and lane.limiter.requests and lane.limiter.tokens
    return lane.limiter.requests, lane.limiter.tokens


async def _until(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.02)


async def _stream_all(gateway: Gateway) -> None:
    async for _ in gateway.stream(ask()):
        pass


@pytest.mark.parametrize("how", ["complete", "stream"])
def test_cancelling_a_call_returns_ticket_reservation_and_tokens_exactly_once(
    how: str, fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    server = fakes[0]
    server.mode(script=[{"kind": "ok", "usage": USAGE}], default={"kind": "hang"})
    gateway = _guarded(fakes, gateway_factory)
    lane = gateway.lanes[0]
    requests, tokens = _buckets(lane)
    call: Callable[[], Coroutine[Any, Any, object]] = (
        (lambda: gateway.complete(ask())) if how == "complete" else (lambda: _stream_all(gateway))
    )

    async def main() -> None:
        async with gateway:
            first = await gateway.complete(ask())  # settled: the buckets are no longer full
            requests_before, tokens_before = requests.available, tokens.available
            assert tokens_before == tokens.capacity - 60
            task = asyncio.create_task(call())
            await _until(lambda: server.count() == 2)  # the call is at the hanging provider
            assert lane.breaker.in_flight == 1 and gateway.ledger.held() > 0
            assert tokens.available < tokens_before
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert lane.breaker.in_flight == 0
            assert lane.breaker.state.value == "closed" and lane.breaker.consecutive_failures == 0
            assert gateway.ledger.held() == 0
            assert gateway.ledger.spent_today() == pytest.approx(first.usage.cost)
            # exact levels: a token refund missed or made twice would show (the clock stands still)
            assert tokens.available == tokens_before
            assert requests.available == requests_before - 1, "the request was sent: it counts"

    asyncio.run(main())
    calls = {"provider": "a", "model": "fake-model"}
    assert metric(gateway, "rag_llm_calls_total", **calls, outcome="success") == 1
    assert metric(gateway, "rag_llm_call_latency_seconds_count", **calls) == 1, "a cancel counts nothing"


def test_a_stream_whose_reader_goes_away_returns_everything_exactly_once(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "text": "The Eiffel Tower is in Paris, France [1].", "usage": USAGE})
    gateway = _guarded(fakes, gateway_factory)
    lane = gateway.lanes[0]
    requests, tokens = _buckets(lane)

    async def main() -> None:
        async with gateway:
            requests_before, tokens_before = requests.available, tokens.available
            stream = gateway.stream(ask())
            await anext(stream)
            assert lane.breaker.in_flight == 1 and gateway.ledger.held() > 0
            await stream.aclose()
            assert lane.breaker.in_flight == 0 and lane.breaker.consecutive_failures == 0
            assert gateway.ledger.held() == 0 and gateway.ledger.spent_today() == 0
            assert tokens.available == tokens_before
            assert requests.available == requests_before - 1

    asyncio.run(main())
