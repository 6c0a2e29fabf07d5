"""The adapters speak each vendor's format, over real HTTP to a fake provider process."""

from __future__ import annotations

import asyncio

import pytest

from rag.llm.types import StreamDelta
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import anthropic_entry, ask, metric, openai_entry


async def _collect(gateway, request) -> list[StreamDelta]:
    return [delta async for delta in gateway.stream(request)]


def test_openai_request_shape_usage_and_cost(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    server = fakes[0]
    server.mode(
        {"kind": "ok", "text": "Paris [1].", "usage": {"prompt_tokens": 1000, "completion_tokens": 500}}
    )
    gateway = gateway_factory(
        {"a": openai_entry(server, price_input_per_mtok=1.0, price_output_per_mtok=2.0, api_key_env="A_KEY")},
        environ={"A_KEY": "sk-test-a-0123456789"},
    )

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(max_tokens=77, temperature=0.0))
        assert response.text == "Paris [1]."
        assert response.provider == "a" and response.finish_reason == "stop"
        assert (response.usage.input_tokens, response.usage.output_tokens) == (1000, 500)
        assert not response.usage.estimated
        assert abs(response.usage.cost - (1000 * 1.0 + 500 * 2.0) / 1e6) < 1e-12

    asyncio.run(main())
    (call,) = server.calls()
    assert call["body"]["max_tokens"] == 77
    assert call["body"]["model"] == "fake-model"
    assert [m["role"] for m in call["body"]["messages"]] == ["system", "user"]
    assert call["headers"]["authorization"] == "Bearer sk-test-a-0123456789"
    assert "response_format" not in call["body"]
    assert metric(gateway, "rag_llm_calls_total", provider="a", model="fake-model", outcome="success") == 1
    labels = {"provider": "a", "model": "fake-model"}
    assert metric(gateway, "rag_llm_tokens_total", **labels, direction="out") == 500
    assert metric(gateway, "rag_llm_cost_usd_total", **labels) == pytest.approx(0.002)
    assert metric(gateway, "rag_llm_call_latency_seconds_count", **labels) == 1
    assert metric(gateway, "rag_llm_requests_total", outcome="answered") == 1


def test_missing_usage_is_estimated_and_marked(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "usage": None})
    gateway = gateway_factory({"a": openai_entry(fakes[0], model="gpt-4o-mini")})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask())
        assert response.usage.estimated
        assert response.usage.input_tokens > 10 and response.usage.output_tokens > 3
        assert response.usage.cost > 0  # gpt-4o-mini has a default price

    asyncio.run(main())


def test_max_tokens_is_capped_by_the_provider_ceiling(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory({"a": openai_entry(fakes[0], max_tokens=64)})

    async def main() -> None:
        async with gateway:
            await gateway.complete(ask(max_tokens=5000))

    asyncio.run(main())
    assert fakes[0].calls()[0]["body"]["max_tokens"] == 64


def test_anthropic_messages_format(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    server = fakes[1]
    server.mode({"kind": "ok", "text": "Paris [1].", "usage": {"prompt_tokens": 40, "completion_tokens": 3}})
    gateway = gateway_factory(
        {"claude": anthropic_entry(server)}, secrets={"claude": "sk-ant-secret-0123456789"}
    )

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(max_tokens=99))
        assert response.text == "Paris [1]." and response.provider == "claude"
        assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 3)

    asyncio.run(main())
    (call,) = server.calls()
    assert call["format"] == "anthropic"
    assert call["headers"]["x-api-key"] == "sk-ant-secret-0123456789"
    assert call["headers"]["anthropic-version"]
    body = call["body"]
    assert body["max_tokens"] == 99
    assert body["system"].startswith("Answer from the sources")
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_streams_in_both_formats(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    text = "The Eiffel Tower stands in Paris, France [1]."
    for server in fakes[:2]:
        server.mode({"kind": "ok", "text": text})
    gateway = gateway_factory(
        {"o": openai_entry(fakes[0]), "c": anthropic_entry(fakes[1])}, secrets={"c": "sk-ant-0123456789"}
    )

    async def main() -> None:
        async with gateway:
            for name in ("o", "c"):
                deltas = await _collect(gateway, ask(model=name))
                *pieces, last = deltas
                assert len(pieces) > 1, "the answer should arrive in several deltas"
                assert "".join(d.text for d in pieces) == text
                assert last.done and last.response is not None
                assert last.response.text == text and last.response.provider == name
                assert last.response.usage.output_tokens > 0

    asyncio.run(main())
    assert fakes[0].calls()[0]["body"]["stream"] is True
    assert fakes[1].calls()[0]["body"]["stream"] is True
