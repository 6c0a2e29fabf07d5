"""A provider that hangs costs a timeout, not the request: the next one answers within the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from rag.errors import ProviderUnavailable
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, openai_entry


def test_hanging_provider_times_out_and_the_next_answers(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "hang"})
    deadline = 3.0
    gateway = gateway_factory(
        {"slow": openai_entry(fakes[0], read_timeout_s=0.4), "fast": openai_entry(fakes[1])},
        llm_deadline_s=deadline,
        llm_max_attempts=2,
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            response = await gateway.complete(ask())
            elapsed = time.monotonic() - started
        assert response.provider == "fast"
        assert response.fallbacks == ["slow:provider_timeout"]
        assert 0.8 <= elapsed < deadline  # two timed-out attempts, then the answer

    asyncio.run(main())
    assert fakes[0].count() == 2


def test_total_timeout_bounds_a_slow_trickle(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "delay_s": 2})
    gateway = gateway_factory(
        {"slow": openai_entry(fakes[0], total_timeout_s=0.3, max_attempts=1)}, llm_deadline_s=5
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable) as caught:
                await gateway.complete(ask())
            assert time.monotonic() - started < 1.0
        assert caught.value.extra["tried"] == ["slow:provider_timeout"]

    asyncio.run(main())


def test_stream_idle_timeout_falls_back_before_any_text(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "stall", "at": 0})
    gateway = gateway_factory(
        {
            "stalls": openai_entry(fakes[0], stream_idle_timeout_s=0.3, max_attempts=1),
            "ok": openai_entry(fakes[1]),
        }
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            deltas = [d async for d in gateway.stream(ask())]
            assert time.monotonic() - started < 2
        assert deltas[-1].done and deltas[-1].response is not None
        assert deltas[-1].response.provider == "ok"
        assert deltas[-1].response.fallbacks == ["stalls:provider_timeout"]

    asyncio.run(main())
