"""The exact-match cache: a repeat costs no provider call; a changed source does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from rag.llm.cache import cache_key
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ManualClock, ask, metric, openai_entry, source
from tests.redis_server import RedisServer, running_redis


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


@pytest.fixture(params=["sqlite", "redis"])
def backend(request: pytest.FixtureRequest) -> dict[str, object]:
    if request.param == "redis":
        server: RedisServer = request.getfixturevalue("redis_server")
        return {"redis_url": server.url}
    return {}


PARIS = "The Eiffel Tower is in Paris."


def test_repeat_is_served_from_cache_until_a_source_changes(
    backend: dict[str, object], fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, cache_enabled=True, **backend)
    expected = gateway.cache.name if gateway.cache else None
    assert expected == ("redis" if backend else "sqlite")
    question = f"Where is the Eiffel Tower? ({time.time_ns()})"  # unique: redis outlives a test

    async def main() -> None:
        async with gateway:
            first = await gateway.complete(ask(question, sources=[source(1, PARIS, sha="v1")]))
            again = await gateway.complete(ask(question, sources=[source(1, PARIS, sha="v1")]))
            assert fakes[0].count() == 1
            assert not first.cached and again.cached and again.text == first.text
            assert again.usage.cost == 0.0
            changed = await gateway.complete(
                ask(question, sources=[source(1, PARIS + " Since 1889.", sha="v2")])
            )
            assert not changed.cached and fakes[0].count() == 2
            bypass = await gateway.complete(
                ask(question, sources=[source(1, PARIS, sha="v1")], bypass_cache=True)
            )
            assert not bypass.cached and fakes[0].count() == 3

    asyncio.run(main())
    assert metric(gateway, "rag_llm_cache_lookups_total", result="hit") == 1
    assert metric(gateway, "rag_llm_cache_lookups_total", result="miss") == 2
    assert metric(gateway, "rag_llm_cache_hits_total", provider="a", model="fake-model") == 1


def test_what_is_not_cached(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode(script=[{"kind": "status", "status": 400}])
    gateway = gateway_factory({"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])}, cache_enabled=True)

    async def main() -> None:
        async with gateway:
            degraded = await gateway.complete(ask())
            assert degraded.provider == "b" and degraded.fallbacks
            healthy = await gateway.complete(ask())
            assert healthy.provider == "a" and not healthy.cached, "a degraded answer is not cached"
            for _ in range(2):
                assert not (await gateway.complete(ask(temperature=0.7))).cached

    asyncio.run(main())
    assert fakes[0].count() == 4


def test_nonzero_temperature_can_be_cached_when_configured(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory(
        {"a": openai_entry(fakes[0])}, cache_enabled=True, cache_nonzero_temperature=True
    )

    async def main() -> None:
        async with gateway:
            await gateway.complete(ask(temperature=0.7))
            assert (await gateway.complete(ask(temperature=0.7))).cached

    asyncio.run(main())
    assert fakes[0].count() == 1


def test_entries_expire(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    clock = ManualClock()
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, cache_enabled=True, cache_ttl_s=60, clock=clock)

    async def main() -> None:
        async with gateway:
            await gateway.complete(ask())
            clock.advance(59)
            assert (await gateway.complete(ask())).cached
            clock.advance(1)
            assert not (await gateway.complete(ask())).cached

    asyncio.run(main())
    assert fakes[0].count() == 2


def test_cache_key_normalises_whitespace_and_tracks_sources() -> None:
    base = ask("Where is it?")
    spaced = base.model_copy(
        update={
            "messages": [
                m.model_copy(update={"content": "  " + m.content.replace(" ", "   ") + "\n"})
                for m in base.messages
            ]
        }
    )
    assert cache_key(base, "a=m") == cache_key(spaced, "a=m")
    assert cache_key(base, "a=m") != cache_key(base, "b=m")
    other_hash = ask("Where is it?", sources=[source(1, "The Eiffel Tower is in Paris.", sha="other")])
    assert cache_key(base, "a=m") != cache_key(other_hash, "a=m")
    assert cache_key(base, "a=m") != cache_key(base.model_copy(update={"prompt_version": "2"}), "a=m")
    assert cache_key(base, "a=m") != cache_key(base.model_copy(update={"max_tokens": 9}), "a=m")
