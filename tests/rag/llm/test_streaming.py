"""A broken stream is replaced before any text is sent, or ends in a clear error, never as a whole answer."""

from __future__ import annotations

import asyncio

import pytest

from rag.errors import InvalidOutput, StreamInterrupted, TruncatedOutput
from rag.llm.types import StreamDelta
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import anthropic_entry, ask, openai_entry

TEXT = "The Eiffel Tower was finished in 1889 and stands in Paris [1]."


@pytest.mark.parametrize("kind", ["cut", "cut_clean"])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_stream_cut_before_any_text_falls_back(
    kind: str, fmt: str, fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": kind, "at": 0, "text": TEXT})
    fakes[1].mode({"kind": "ok", "text": TEXT})
    first = (
        openai_entry(fakes[0], max_attempts=1)
        if fmt == "openai"
        else anthropic_entry(fakes[0], max_attempts=1)
    )
    gateway = gateway_factory(
        {"first": first, "second": openai_entry(fakes[1])}, secrets={"first": "k-0123456789"}
    )

    async def main() -> list[StreamDelta]:
        async with gateway:
            return [d async for d in gateway.stream(ask())]

    deltas = asyncio.run(main())
    final = deltas[-1]
    assert final.done and final.response is not None and final.response.provider == "second"
    assert "".join(d.text for d in deltas[:-1]) == TEXT == final.response.text
    assert final.response.fallbacks == ["first:provider_stream_interrupted"]


@pytest.mark.parametrize("kind", ["cut", "cut_clean"])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
def test_stream_cut_mid_way_is_a_clear_error(
    kind: str, fmt: str, fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": kind, "at": 2, "text": TEXT})
    entry = openai_entry(fakes[0]) if fmt == "openai" else anthropic_entry(fakes[0])
    gateway = gateway_factory(
        {"first": entry, "second": openai_entry(fakes[1])}, secrets={"first": "k-0123456789"}
    )
    received: list[StreamDelta] = []

    async def main() -> None:
        async with gateway:
            async for delta in gateway.stream(ask()):
                received.append(delta)

    with pytest.raises(StreamInterrupted):
        asyncio.run(main())
    assert received, "some text was streamed before the cut"
    assert not any(d.done for d in received), "a cut stream must never end as a whole answer"
    assert "".join(d.text for d in received) != TEXT
    assert fakes[1].count() == 0


def test_truncated_stream_is_an_error(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode({"kind": "length", "text": TEXT})
    gateway = gateway_factory({"a": openai_entry(fakes[0])})
    received: list[StreamDelta] = []

    async def main() -> None:
        async with gateway:
            async for delta in gateway.stream(ask()):
                received.append(delta)

    with pytest.raises(TruncatedOutput):
        asyncio.run(main())
    assert received and not any(d.done for d in received)


def test_streamed_json_is_validated(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode({"kind": "ok", "text": '{"answer": "Paris [1]", "citations": [1], "abstained": false}'})
    fakes[1].mode({"kind": "ok", "text": "not json at all"})
    gateway = gateway_factory({"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])})

    async def main() -> None:
        async with gateway:
            deltas = [d async for d in gateway.stream(ask(json_mode=True))]
            assert deltas[-1].response is not None
            assert deltas[-1].response.text == '{"answer": "Paris [1]", "citations": [1], "abstained": false}'
            with pytest.raises(InvalidOutput):
                async for _ in gateway.stream(ask(json_mode=True, model="b")):
                    pass

    asyncio.run(main())


def test_abandoned_stream_releases_its_slot(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "text": TEXT})
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, breaker_failure_threshold=1)

    async def main() -> None:
        async with gateway:
            stream = gateway.stream(ask())
            await anext(stream)
            await stream.aclose()
            # with threshold 1 an unreleased slot would block the next, still-unproven call
            response = await asyncio.wait_for(gateway.complete(ask()), 3)
            assert response.provider == "a"
            assert gateway.status()[0]["breaker"] == "closed"

    asyncio.run(main())
