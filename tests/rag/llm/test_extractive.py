"""The offline answerer quotes the best-supported sentences with their [n] labels, or abstains."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from rag.llm.extractive import ExtractiveAnswerer, split_sentences
from rag.llm.gateway import Gateway
from rag.llm.schema import ABSTENTION_SENTENCE, GroundedAnswer
from rag.settings import Settings
from tests.fakes.llm_server import FakeLLMServer
from tests.rag.llm.conftest import GatewayFactory
from tests.rag.llm.helpers import ask, openai_entry, source

pytestmark = pytest.mark.slow  # loads the real embedding model once

TOWER = (
    "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France. "
    "It is named after the engineer Gustave Eiffel, whose company designed and built the tower. "
    "Construction began in January 1887 and was completed in March 1889, in time for the World's Fair. "
    "The tower is 330 metres tall, about the same height as an 81-storey building."
)
LEAVES = (
    "Photosynthesis is the process by which green plants turn light energy into chemical energy.\n\n"
    "It takes place mainly in the chloroplasts of leaf cells, which contain the pigment chlorophyll. "
    "Plants take in carbon dioxide through small pores in their leaves called stomata. "
    "Oxygen is released as a by-product of splitting water molecules."
)
SOURCES = [source(1, LEAVES), source(2, TOWER)]


@pytest.fixture(scope="module")
def answerer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer("sentence-transformers/all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    ("question", "label", "needle"),
    [
        ("When was the Eiffel Tower completed?", 2, "March 1889"),
        ("Who is the Eiffel Tower named after?", 2, "Gustave Eiffel"),
        ("How tall is the Eiffel Tower?", 2, "330 metres"),
        ("Through which openings do plants absorb carbon dioxide?", 1, "stomata"),
        ("Where in the cell does photosynthesis happen?", 1, "chloroplasts"),
    ],
)
def test_quotes_the_sentence_that_answers(
    answerer: ExtractiveAnswerer, question: str, label: int, needle: str
) -> None:
    result = answerer.answer(question, SOURCES)
    assert not result.abstained
    assert len(result.sentences) == 1, "a factoid question gets the single best sentence"
    assert needle in result.sentences[0].text
    assert result.citations == [label]
    assert result.text.endswith(f"[{label}]")
    assert result.sentences[0].text in (LEAVES + TOWER).replace("\n\n", " ")


@pytest.mark.parametrize(
    "question", ["What is the boiling point of mercury?", "Who won the 1998 football World Cup?", "   "]
)
def test_abstains_when_nothing_supports_an_answer(answerer: ExtractiveAnswerer, question: str) -> None:
    result = answerer.answer(question, SOURCES)
    assert result.abstained and result.text == ABSTENTION_SENTENCE and result.citations == []


def test_abstains_without_sources(answerer: ExtractiveAnswerer) -> None:
    assert answerer.answer("When was the Eiffel Tower completed?", []).abstained


def test_json_rendering_has_the_shared_shape(answerer: ExtractiveAnswerer) -> None:
    answered = GroundedAnswer.model_validate_json(
        answerer.answer("How tall is the Eiffel Tower?", SOURCES).render(json_mode=True)
    )
    assert answered.citations == [2] and not answered.abstained and "[2]" in answered.answer
    abstained = GroundedAnswer.model_validate_json(answerer.answer("Who won in 1998?", SOURCES).render(True))
    assert abstained.abstained and abstained.answer == ABSTENTION_SENTENCE and abstained.citations == []


def test_the_minimum_score_is_configurable() -> None:
    strict = ExtractiveAnswerer("sentence-transformers/all-MiniLM-L6-v2", min_score=0.99)
    assert strict.answer("How tall is the Eiffel Tower?", SOURCES).abstained


def test_sentence_splitting_keeps_paragraphs_apart() -> None:
    sentences = split_sentences(
        "First line of a heading\n\nDr. Smith arrived at 3 p.m. on Monday. He left.\nok"
    )
    assert sentences[0] == "First line of a heading"
    assert "Dr. Smith arrived at 3 p.m. on Monday." in sentences


def test_default_chain_answers_offline(make_settings: Callable[..., Settings]) -> None:
    gateway = Gateway.from_settings(make_settings(), registry=CollectorRegistry())

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(ask("How tall is the Eiffel Tower?", sources=SOURCES))
            assert response.provider == "extractive" and "330 metres" in response.text
            assert re.search(r"\[2\]", response.text) and response.usage.cost == 0
            deltas = [d async for d in gateway.stream(ask("How tall is the Eiffel Tower?", sources=SOURCES))]
            assert deltas[-1].done and deltas[-1].response is not None
            assert deltas[-1].response.text == response.text

    asyncio.run(main())


def test_last_resort_answers_when_every_provider_fails(
    fakes: list[FakeLLMServer], gateway_factory: GatewayFactory
) -> None:
    fakes[0].mode({"kind": "status", "status": 503})
    gateway = gateway_factory({"a": openai_entry(fakes[0])}, last_resort=True, llm_max_attempts=2)

    async def main() -> None:
        async with gateway:
            response = await gateway.complete(
                ask("When was the Eiffel Tower completed?", sources=SOURCES, json_mode=True)
            )
        assert response.provider == "extractive" and response.fallbacks == ["a:provider_error"]
        assert GroundedAnswer.model_validate_json(response.text).citations == [2]

    asyncio.run(main())
    assert fakes[0].count() == 2
