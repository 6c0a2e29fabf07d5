"""Evidence instead of giving up, over a real filing: the offline answerer's three outcomes.

FinanceBench's two evidence pages of Coca-Cola's 2017 10-K, ingested as a PDF through the real ingestion (PDF text,
table rows rewritten with their column labels, chunks, embeddings) into a real index, asked
through the real pipeline and gateway with the default, offline chain. FinanceBench's return on
assets question needs net income (the income statement) over average total assets (the balance
sheet): both are there, the ratio is not, so the answer is the evidence, cited to those pages.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader, PdfWriter

from ingest.chunking import Chunker
from ingest.pipeline import IngestionPipeline
from rag.answer import Answer, StreamEvent
from rag.answering import QueryPipeline
from rag.index.store import DocumentStore, open_store
from rag.llm.gateway import Gateway
from rag.llm.schema import ABSTENTION_SENTENCE, EVIDENCE_SENTENCE
from rag.rerank import build_reranker
from rag.settings import Settings, load_settings

pytestmark = pytest.mark.slow  # the real embedding model, ingestion and index

ROA_ID = "financebench_id_03473"
FILING = "COCACOLA_2017_10K"
PAGES = (73, 75)  # zero-based in the filing: the income statement, the balance sheet
INCOME_STATEMENT, BALANCE_SHEET = 1, 2  # their pages in the extract
NAME = "COCACOLA_2017_10K_p74_p76.pdf"
QUOTE = re.compile(r'"([^"]+)" \[(\d+)\]')  # an evidence quote and its label


def financebench_question(datasets: Path, question_id: str) -> dict[str, Any]:
    path = datasets / "financebench" / "data" / "financebench_open_source.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if record["financebench_id"] == question_id:
            return dict(record)
    raise AssertionError(f"{question_id} is not in {path}")


@pytest.fixture(scope="module")
def roa(datasets: Path) -> dict[str, Any]:
    record = financebench_question(datasets, ROA_ID)
    assert record["doc_name"] == FILING
    assert sorted(e["evidence_page_num"] for e in record["evidence"]) == list(PAGES)
    return record


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return load_settings(data_dir=tmp_path_factory.mktemp("evidence") / "var", reranker="none")


@pytest.fixture(scope="module")
def index(
    settings: Settings, datasets: Path, embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DocumentStore]:
    reader = PdfReader(datasets / "financebench" / "pdfs" / f"{FILING}.pdf")
    writer = PdfWriter()
    for page in PAGES:
        writer.add_page(reader.pages[page])
    path = tmp_path_factory.mktemp("filing") / NAME
    with path.open("wb") as out:
        writer.write(out)
    store = open_store(settings)
    ingestion = IngestionPipeline(settings, store, embedder, Chunker.from_settings(settings, embedder))
    result = ingestion.ingest_file(path, name=NAME)
    assert result.document.pages == len(PAGES)
    yield store
    store.close()


def ask(settings: Settings, index: DocumentStore, embedder: Any, question: str) -> tuple[Answer, Answer]:
    """The answer as ``ask`` gives it (JSON mode) and as ``stream`` ends (text mode)."""

    async def run() -> tuple[Answer, Answer]:
        async with Gateway.from_settings(settings) as gateway:
            pipeline = QueryPipeline(settings, index, embedder, build_reranker(settings), gateway)
            asked = await pipeline.ask(question, bypass_cache=True)
            events: list[StreamEvent] = [e async for e in pipeline.stream(question, bypass_cache=True)]
        final = events[-1].answer
        assert final is not None and "".join(e.text for e in events[:-1]) == final.answer
        return asked, final

    return asyncio.run(run())


def test_a_figure_to_work_out_gets_the_evidence_cited_to_its_pages(
    settings: Settings, index: DocumentStore, embedder: Any, roa: dict[str, Any]
) -> None:
    for answer in ask(settings, index, embedder, roa["question"]):
        assert answer.provider == "extractive"
        assert answer.answer_type == "evidence" and not answer.abstained
        assert answer.abstention_reason is None
        assert answer.answer.startswith(EVIDENCE_SENTENCE) and "not stated directly" in answer.answer
        # the figures the ratio is made of, quoted as table rows, not whole tables
        quotes = dict(QUOTE.findall(answer.answer))
        assert 1 <= len(quotes) <= 3
        assert answer.citations and answer.dropped_citations == 0 and not answer.uncited
        assert all(c.document_name == NAME for c in answer.citations)
        pages = {str(c.n): c.pages for c in answer.citations}
        assert {label for label in quotes.values()} == set(pages)
        # each figure is cited to the page it is on
        total_assets = "TOTAL ASSETS: December 31, 2017: $87,896; December 31, 2016: $87,270 (in millions)"
        assert pages[quotes[total_assets]] == [BALANCE_SHEET]
        net_income = [q for q in quotes if "NET INCOME" in q.upper() and "1,283" in q]
        assert net_income and pages[quotes[net_income[0]]] == [INCOME_STATEMENT]
        assert any("87,896" in c.snippet for c in answer.citations)
        Answer.model_validate_json(answer.model_dump_json())


def test_a_stated_figure_is_answered(settings: Settings, index: DocumentStore, embedder: Any) -> None:
    for answer in ask(
        settings, index, embedder, "What were the net operating revenues of Coca-Cola in 2017?"
    ):
        assert answer.answer_type == "answer" and not answer.abstained
        assert not answer.answer.startswith(EVIDENCE_SENTENCE)
        assert "NET OPERATING REVENUES: 2017: $35,410" in answer.answer
        assert {p for c in answer.citations for p in c.pages} == {INCOME_STATEMENT}


def test_an_unrelated_question_still_abstains(
    settings: Settings, index: DocumentStore, embedder: Any
) -> None:
    for answer in ask(settings, index, embedder, "Who painted the Mona Lisa?"):
        assert answer.answer_type == "abstained" and answer.abstained
        assert answer.answer == ABSTENTION_SENTENCE and answer.citations == []


def test_another_companys_figure_is_not_worked_out_from_these_pages(
    settings: Settings, index: DocumentStore, embedder: Any, roa: dict[str, Any]
) -> None:
    question = roa["question"].replace("Coca Cola", "PepsiCo")
    assert question != roa["question"]
    for answer in ask(settings, index, embedder, question):
        assert answer.answer_type == "abstained" and answer.answer == ABSTENTION_SENTENCE


def test_answer_type_agrees_with_abstained() -> None:
    from rag.answer import RerankerInfo

    reranker = RerankerInfo(name="none", available=True)
    assert Answer(answer="x [1]", abstained=False, reranker=reranker).answer_type == "answer"
    assert Answer(answer="x", abstained=True, reranker=reranker).answer_type == "abstained"
    with pytest.raises(ValueError, match="abstained"):
        Answer(answer="x", abstained=False, answer_type="abstained", reranker=reranker)
