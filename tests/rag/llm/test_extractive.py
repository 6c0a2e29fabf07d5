"""The offline answerer quotes the best-supported sentences with their [n] labels, quotes the
evidence when the answer must be worked out from figures, or abstains."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from prometheus_client import CollectorRegistry

from rag.llm.extractive import ExtractiveAnswerer, split_sentences
from rag.llm.gateway import Gateway
from rag.llm.schema import ABSTENTION_SENTENCE, EVIDENCE_SENTENCE, GroundedAnswer, is_evidence
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
# two chunks of Coca-Cola's 2017 10-K (pages 74 and 76) as ingestion writes them: table rows with
# their column labels under the table's heading
BALANCE_SHEET = (
    "THE COCA-COLA COMPANY AND SUBSIDIARIES\nCONSOLIDATED BALANCE SHEETS\nDecember 31, 2017 2016\n"
    "GOODWILL: December 31, 2017: 9,401; December 31, 2016: 10,629 (in millions)\n"
    "OTHER INTANGIBLE ASSETS: December 31, 2017: 368; December 31, 2016: 726 (in millions)\n"
    "TOTAL ASSETS: December 31, 2017: $87,896; December 31, 2016: $87,270 (in millions)\n"
    "LIABILITIES AND EQUITY\nCURRENT LIABILITIES\n"
    "Accounts payable and accrued expenses: December 31, 2017: $8,748; December 31, 2016: $9,490 (in millions)"
)
INCOME_STATEMENT = (
    "THE COCA-COLA COMPANY AND SUBSIDIARIES\nCONSOLIDATED STATEMENTS OF INCOME\n"
    "Year Ended December 31, 2017 2016 2015\n"
    "Income from discontinued operations (net of income taxes of $47, $0 and $0, respectively): "
    "2017: 101; 2016: —; 2015: — (in millions)\n"
    "CONSOLIDATED NET INCOME: 2017: 1,283; 2016: 6,550; 2015: 7,366 (in millions)\n"
    "Less: Net income attributable to noncontrolling interests: 2017: 35; 2016: 23; 2015: 15 (in millions)"
)
FILING = [source(1, TOWER), source(2, BALANCE_SHEET), source(3, INCOME_STATEMENT)]
ROA = (
    "What is the FY2017 return on assets (ROA) for Coca Cola? ROA is defined as: FY2017 net income / "
    "(average total assets between FY2016 and FY2017). Round your answer to two decimal places."
)


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


def test_a_figure_to_work_out_gets_the_evidence_rows(answerer: ExtractiveAnswerer) -> None:
    result = answerer.answer(ROA, FILING)
    assert result.answer_type == "evidence" and result.evidence and not result.abstained
    assert result.text.startswith(EVIDENCE_SENTENCE) and is_evidence(result.text)
    assert 1 <= len(result.sentences) <= 3 and set(result.citations) <= {2, 3}
    quoted = [c.text for c in result.sentences]
    assert "TOTAL ASSETS: December 31, 2017: $87,896; December 31, 2016: $87,270 (in millions)" in quoted
    assert "CONSOLIDATED NET INCOME: 2017: 1,283; 2016: 6,550; 2015: 7,366 (in millions)" in quoted
    assert '"TOTAL ASSETS: December 31, 2017: $87,896; December 31, 2016: $87,270 (in millions)" [2]' in (
        result.text
    )
    answered = GroundedAnswer.model_validate_json(result.render(json_mode=True))
    assert not answered.abstained and answered.citations == result.citations
    assert answered.answer == result.text and is_evidence(answered.answer)


def test_evidence_comes_only_from_sources_naming_what_the_question_names(
    answerer: ExtractiveAnswerer,
) -> None:
    result = answerer.answer(ROA.replace("Coca Cola", "PepsiCo"), FILING)
    assert result.answer_type == "abstained" and result.text == ABSTENTION_SENTENCE


def test_evidence_needs_figures() -> None:
    """Prose that lacks the answer is missing evidence, not evidence to work the answer out from."""
    lenient = ExtractiveAnswerer("sentence-transformers/all-MiniLM-L6-v2", evidence_score=-1.0)
    question = "What is the boiling point of mercury?"
    assert lenient.answer(question, [source(1, LEAVES)]).answer_type == "abstained"
    with_a_figure = lenient.answer(question, SOURCES)  # "330 metres": a figure, though a useless one
    assert with_a_figure.answer_type == "evidence" and with_a_figure.citations == [2]
    assert "330 metres" in with_a_figure.text


def test_the_evidence_bar_is_configurable() -> None:
    strict = ExtractiveAnswerer("sentence-transformers/all-MiniLM-L6-v2", evidence_score=0.40)
    assert strict.answer(ROA, FILING).answer_type == "abstained"


def test_the_minimum_score_is_configurable() -> None:
    strict = ExtractiveAnswerer("sentence-transformers/all-MiniLM-L6-v2", min_score=0.99)
    # below the bar the sentence with the figure is still evidence; without the evidence outcome, nothing
    assert strict.answer("How tall is the Eiffel Tower?", SOURCES).answer_type == "evidence"
    stricter = ExtractiveAnswerer(
        "sentence-transformers/all-MiniLM-L6-v2", min_score=0.99, evidence_score=0.99
    )
    assert stricter.answer("How tall is the Eiffel Tower?", SOURCES).abstained


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
