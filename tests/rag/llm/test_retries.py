"""Retries happen only where they can help, wait as told, and stay bounded."""

from __future__ import annotations

import asyncio
import email.utils
import time

import httpx
import pytest

from rag.errors import ProviderError, ProviderRejected, ProviderUnavailable
from rag.llm.providers.http import parse_retry_after
from rag.llm.retry import RetryPolicy
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, metric, openai_entry


def test_429_retry_after_is_honoured_then_succeeds(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    server = fakes[0]
    server.mode(script=[{"kind": "status", "status": 429, "retry_after": "1"}])
    gateway = gateway_factory({"a": openai_entry(server)})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask())
        assert response.provider == "a" and response.attempts == 2 and not response.fallbacks

    asyncio.run(main())
    first, second = server.calls()
    assert second["t"] - first["t"] >= 1.0
    assert metric(gateway, "rag_llm_retries_total", provider="a", model="fake-model") == 1


def test_retry_after_longer_than_the_cap_moves_on(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "status", "status": 429, "retry_after": "30"})
    gateway = gateway_factory(
        {"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])}, llm_retry_after_cap_s=2
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            response = await gateway.complete(ask())
            assert time.monotonic() - started < 2
        assert response.provider == "b"
        assert response.fallbacks == ["a:provider_rate_limited"]

    asyncio.run(main())
    assert fakes[0].count() == 1


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
def test_client_errors_are_never_retried(
    status: int, fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "status", "status": status})
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, llm_max_attempts=5)

    async def main() -> None:
        async with gateway:
            with pytest.raises(ProviderUnavailable) as caught:
                await gateway.complete(ask())
        assert f"HTTP {status}" in str(caught.value.__cause__)

    asyncio.run(main())
    assert fakes[0].count() == 1


def test_400_is_not_retried_and_the_next_provider_answers(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "status", "status": 400})
    gateway = gateway_factory({"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask())
        assert response.provider == "b" and response.fallbacks == [f"a:{ProviderRejected.code}"]

    asyncio.run(main())
    assert (fakes[0].count(), fakes[1].count()) == (1, 1)


@pytest.mark.parametrize(
    "failure", [{"kind": "status", "status": 503}, {"kind": "malformed"}, {"kind": "cut"}]
)
def test_transient_failures_are_retried(
    failure: dict[str, object], fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode(script=[failure])
    gateway = gateway_factory({"a": openai_entry(fakes[0])})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask())
        assert response.provider == "a" and response.attempts == 2

    asyncio.run(main())
    assert fakes[0].count() == 2


def test_attempts_are_bounded(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode({"kind": "status", "status": 500})
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, llm_max_attempts=3, breaker_failure_threshold=10)

    async def main() -> None:
        async with gateway:
            with pytest.raises(ProviderUnavailable):
                await gateway.complete(ask())

    asyncio.run(main())
    assert fakes[0].count() == 3


def test_the_deadline_stops_retrying(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode({"kind": "status", "status": 500, "retry_after": "0.4"})
    gateway = gateway_factory(
        {"a": openai_entry(fakes[0])}, llm_max_attempts=50, breaker_failure_threshold=100, llm_deadline_s=1.0
    )

    async def main() -> None:
        async with gateway:
            started = time.monotonic()
            with pytest.raises(ProviderUnavailable):
                await gateway.complete(ask())
            assert time.monotonic() - started < 1.5

    asyncio.run(main())
    assert 2 <= fakes[0].count() <= 3


def test_retry_after_header_forms() -> None:
    assert parse_retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert parse_retry_after(httpx.Headers({"retry-after-ms": "250"})) == 0.25
    assert parse_retry_after(httpx.Headers({})) is None
    assert parse_retry_after(httpx.Headers({"retry-after": "soon"})) is None
    later = email.utils.formatdate(time.time() + 5, usegmt=True)
    waited = parse_retry_after(httpx.Headers({"retry-after": later}))
    assert waited is not None and 3.5 <= waited <= 5.0
    past = email.utils.formatdate(time.time() - 60, usegmt=True)
    assert parse_retry_after(httpx.Headers({"retry-after": past})) == 0.0


def test_the_retry_policy() -> None:
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0, retry_after_cap_s=10.0)
    transient = ProviderError("x", retryable=True)
    assert policy.delay(ProviderRejected("x"), 1, 5, 60) is None, "not retryable"
    assert policy.delay(transient, 5, 5, 60) is None, "attempts spent"
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (6, 4.0)):
        wait = policy.delay(transient, attempt, 10, 60)
        assert wait is not None and 0 <= wait <= ceiling, "full jitter under a capped exponential"
    told = policy.delay(ProviderError("x", retryable=True, retry_after=2.0), 1, 5, 60)
    assert told is not None and 2.0 <= told <= 2.2, "Retry-After is a floor, with a little jitter"
    assert policy.delay(ProviderError("x", retryable=True, retry_after=11.0), 1, 5, 60) is None, (
        "over the cap"
    )
    assert policy.delay(ProviderError("x", retryable=True, retry_after=2.0), 1, 5, 1.5) is None, (
        "past the deadline"
    )
