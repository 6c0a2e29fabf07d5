"""Truncated output is never served as whole; invalid JSON gets one repair, then the next provider."""

from __future__ import annotations

import asyncio
import json

import pytest

from rag.errors import ProviderUnavailable
from rag.llm.schema import GroundedAnswer, parse_grounded_answer
from rag.llm.usage import estimate_prompt_tokens
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, openai_entry

GOOD = '{"answer": "It is in Paris [1].", "citations": [1], "abstained": false}'


def test_truncation_is_retried_once_with_more_room(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode(script=[{"kind": "length", "text": "The Eiffel Tower is"}])
    gateway = gateway_factory({"a": openai_entry(fakes[0], max_tokens=400)})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(max_tokens=100))
        assert response.finish_reason == "stop" and response.attempts == 2

    asyncio.run(main())
    assert [c["body"]["max_tokens"] for c in fakes[0].calls()] == [100, 200]


def test_truncation_twice_falls_back(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode({"kind": "length", "text": "The Eiffel Tower is"})
    gateway = gateway_factory({"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask())
        assert response.provider == "b" and response.fallbacks == ["a:provider_output_truncated"]
        assert response.text != "The Eiffel Tower is"

    asyncio.run(main())
    assert fakes[0].count() == 2


def test_truncation_at_the_ceiling_falls_back_at_once(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "length"})
    gateway = gateway_factory({"a": openai_entry(fakes[0], max_tokens=50)})

    async def main() -> None:
        async with gateway:
            with pytest.raises(ProviderUnavailable):
                await gateway.complete(ask(max_tokens=50))

    asyncio.run(main())
    assert fakes[0].count() == 1


def test_invalid_json_gets_one_repair(fakes: list[FakeLLMServer], gateway_factory: GatewayFactory) -> None:
    fakes[0].mode(
        script=[{"kind": "ok", "text": "Sure! The answer is Paris."}], default={"kind": "ok", "text": GOOD}
    )
    gateway = gateway_factory({"a": openai_entry(fakes[0])})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(json_mode=True))
        assert GroundedAnswer.model_validate_json(response.text).citations == [1]
        assert response.attempts == 2

    asyncio.run(main())
    first, repair = fakes[0].calls()
    assert first["body"]["response_format"] == {"type": "json_object"}
    assert repair["body"]["messages"][-2] == {"role": "assistant", "content": "Sure! The answer is Paris."}
    assert "JSON" in repair["body"]["messages"][-1]["content"]


def test_invalid_json_twice_moves_to_the_next_provider(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "text": '{"answer": 3}'})
    fakes[1].mode({"kind": "ok", "text": "```json\n" + GOOD + "\n```"})
    gateway = gateway_factory({"a": openai_entry(fakes[0]), "b": openai_entry(fakes[1])})

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(json_mode=True))
        assert response.provider == "b" and response.fallbacks == ["a:provider_invalid_output"]
        assert json.loads(response.text) == json.loads(GOOD)

    asyncio.run(main())
    assert (fakes[0].count(), fakes[1].count()) == (2, 1)


def test_json_is_requested_even_when_the_prompt_never_says_so(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "ok", "text": GOOD})
    gateway = gateway_factory({"a": openai_entry(fakes[0])})
    request = ask(json_mode=True)
    request.messages = [m.model_copy(update={"content": "Answer the question."}) for m in request.messages]

    async def main() -> None:
        async with gateway:
            await gateway.complete(request)

    asyncio.run(main())
    messages = fakes[0].calls()[0]["body"]["messages"]
    assert any("JSON" in m["content"] for m in messages)


def test_json_mode_is_only_requested_from_providers_that_have_one(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    for server in fakes[:2]:
        server.mode({"kind": "ok", "text": GOOD})
    gateway = gateway_factory(
        {"native": openai_entry(fakes[0]), "plain": openai_entry(fakes[1], json_format="prompt")}
    )
    request = ask(json_mode=True)
    request.messages = [m.model_copy(update={"content": "Answer the question."}) for m in request.messages]

    async def main() -> None:
        async with gateway:
            assert gateway.lanes[0].provider.supports_json and not gateway.lanes[1].provider.supports_json
            for name in ("native", "plain"):
                response = await gateway.complete(request.model_copy(update={"model": name}))
                assert json.loads(response.text) == json.loads(GOOD)

    asyncio.run(main())
    (native,), (plain,) = fakes[0].calls(), fakes[1].calls()
    assert native["body"]["response_format"] == {"type": "json_object"}
    assert "response_format" not in plain["body"]
    assert any("JSON" in m["content"] for m in plain["body"]["messages"]), "asked for in the prompt"


def test_the_context_window_bounds_the_request(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    prompt = estimate_prompt_tokens(ask().messages, "fake-model")
    gateway = gateway_factory(
        {
            "tiny": openai_entry(fakes[0], context_window=prompt),
            "small": openai_entry(fakes[1], context_window=prompt + 30),
        }
    )

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask(max_tokens=500))
        assert response.provider == "small" and response.fallbacks == ["tiny:provider_rejected"]

    asyncio.run(main())
    assert fakes[0].count() == 0, "a prompt that cannot fit is never sent"
    assert fakes[1].calls()[0]["body"]["max_tokens"] == 30


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{}",
        '{"answer": "x", "citations": ["one"]}',
        '{"answer": "x", "citations": [1], "abstained": "maybe"}',
        "[1]",
    ],
)
def test_bad_shapes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_grounded_answer(text)


def test_json_is_found_inside_fences_and_prose() -> None:
    assert parse_grounded_answer("Here you go:\n```json\n" + GOOD + "\n```").answer == "It is in Paris [1]."
    assert parse_grounded_answer('Result: {"answer": "No.", "citations": [], "abstained": true}').abstained
