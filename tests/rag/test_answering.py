"""The query pipeline against the real document store, the real embedding model and real re-rankers."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from rag.answer import Answer, StreamEvent
from rag.answering import STAGES, QueryPipeline
from rag.errors import InvalidRequest
from rag.index.store import DocumentStore, open_store
from rag.llm.gateway import Gateway
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.prompts import PROMPT_ID, PROMPT_VERSION
from rag.rerank import build_reranker
from rag.rerank.none import NoReranker
from rag.retrieval import Retriever
from rag.settings import Settings, load_settings
from rag.tokens import count_tokens
from rag.types import PAGE_SEPARATOR, Chunk, Document, chunk_id
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.rerank_server import RerankServer, overlap_score

T = TypeVar("T")

CORPUS: dict[str, tuple[str, list[str]]] = {
    "harbor": (
        "Harbor report.pdf",
        [
            "The Port of Kelby handled 4.2 million containers in 2022. Most of that traffic came from Asia.",
            "A new crane terminal opened at Kelby in March 2023. The terminal cost 310 million euros.",
            "Dredging of the main shipping channel is planned for 2025.",
        ],
    ),
    "orchard": (
        "Orchard notes.txt",
        [
            "The orchard grows twelve varieties of apple. The apple harvest begins in late August.",
            "Pear trees were planted along the river bank in 2019.",
        ],
    ),
    "choir": (
        "Choir history.docx",
        ["The village choir was founded in 1911 by a schoolteacher named Agnes Moll."],
    ),
}

pytestmark = pytest.mark.slow  # the real embedding model and a real index

QUESTION = "How many containers did the Port of Kelby handle in 2022?"


def document_chunks(doc_id: str, name: str, pages: list[str]) -> tuple[Document, list[Chunk]]:
    """One chunk per page, plus one spanning the first page break (it overlaps both)."""
    text = PAGE_SEPARATOR.join(pages)
    doc = Document(doc_id, name, "default", f"sha-{doc_id}", "text", len(text), pages=len(pages))
    chunks, offset = [], 0
    for page_no, page in enumerate(pages, start=1):
        chunks.append(
            Chunk(
                chunk_id(doc_id, page_no - 1),
                doc_id,
                page_no - 1,
                page,
                page_no,
                page_no,
                offset,
                offset + len(page),
                20,
            )
        )
        offset += len(page) + len(PAGE_SEPARATOR)
    if len(pages) > 1:
        start = len(pages[0]) // 2
        end = len(pages[0]) + len(PAGE_SEPARATOR) + len(pages[1]) // 2
        chunks.append(
            Chunk(chunk_id(doc_id, len(pages)), doc_id, len(pages), text[start:end], 1, 2, start, end, 30)
        )
    return doc, chunks


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[DocumentStore]:
    settings = load_settings(data_dir=tmp_path_factory.mktemp("answering") / "var", reranker="none")
    idx = open_store(settings)
    for doc_id, (name, pages) in CORPUS.items():
        doc, chunks = document_chunks(doc_id, name, pages)
        idx.write(doc, chunks, embedder.embed([c.text for c in chunks]))
    yield idx
    idx.close()


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLMServer]:
    server = FakeLLMServer.start()
    yield server
    server.stop()


def pipeline_settings(data_dir: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": data_dir,
        "reranker": "none",
        "fusion": "rrf",  # these tests reason about RRF's scores
        "dense_k": 10,
        "lexical_k": 10,
        "top_k": 3,
        "context_budget_tokens": 400,
    }
    return load_settings(**{**base, **overrides})


def make_pipeline(index: DocumentStore, embedder: Any, gateway: Any, **overrides: Any) -> QueryPipeline:
    settings = pipeline_settings(Path("/nonexistent-unused"), **overrides)
    return QueryPipeline(settings, index, embedder, build_reranker(settings), gateway)


def with_gateway(
    index: DocumentStore,
    embedder: Any,
    data_dir: Path,
    use: Callable[[QueryPipeline], Awaitable[T]],
    **overrides: Any,
) -> T:
    """Run ``use`` against a pipeline with the real gateway (its chain as configured)."""
    settings = pipeline_settings(data_dir, **overrides)

    async def run() -> T:
        async with Gateway.from_settings(settings) as gateway:
            return await use(QueryPipeline(settings, index, embedder, build_reranker(settings), gateway))

    return asyncio.run(run())


def scripted(llm: FakeLLMServer, text: str) -> dict[str, Any]:
    """Settings for a chain whose first provider (OpenAI-compatible, at the fake) says ``text``."""
    llm.reset()
    llm.mode(default={"kind": "ok", "text": text, "usage": {"prompt_tokens": 120, "completion_tokens": 9}})
    return {
        "llm_chain": "openai",
        "openai_base_url": llm.openai_url,
        "openai_api_key": "sk-test-key-0000",
        "cache_enabled": False,
    }


def grounded(answer: str, citations: list[int], abstained: bool = False) -> str:
    return json.dumps({"answer": answer, "citations": citations, "abstained": abstained})


# --- search -------------------------------------------------------------------------


def test_search_shows_every_stage_best_first(index: DocumentStore, embedder: Any) -> None:
    pipeline = make_pipeline(index, embedder, None)
    result = pipeline.search(QUESTION, k=4)
    assert len(result.results) == 4 and result.candidates >= 4
    top = result.results[0]
    assert top.document_id == "harbor" and top.document_name == "Harbor report.pdf"
    assert top.scores.dense_rank is not None and top.scores.lexical_rank is not None
    fused = [r.scores.fused for r in result.results]
    assert fused == sorted(fused, reverse=True)
    for hit in result.results:
        s = hit.scores
        expected = (1 / (60 + s.dense_rank) if s.dense_rank else 0) + (
            1 / (60 + s.lexical_rank) if s.lexical_rank else 0
        )
        assert s.fused == pytest.approx(expected) and s.rerank is None
    assert not result.reranker.used and result.reranker.name == "none"
    assert {"embed", "dense", "lexical", "fuse", "total"} <= set(result.timings)


def test_search_honours_collection_and_filters(index: DocumentStore, embedder: Any) -> None:
    pipeline = make_pipeline(index, embedder, None)
    filtered = pipeline.search(QUESTION, filters={"document_id": ["orchard", "choir"]}, k=10)
    assert filtered.results and {r.document_id for r in filtered.results} <= {"orchard", "choir"}
    assert pipeline.search(QUESTION, collection="elsewhere", k=5).results == []


def test_retrieval_modes_leave_one_retriever_out(index: DocumentStore, embedder: Any) -> None:
    settings = pipeline_settings(Path("/nonexistent-unused"))
    retriever = Retriever(settings, index, embedder, NoReranker())
    hybrid = retriever.retrieve(QUESTION, k=3)
    assert hybrid.dense and hybrid.lexical and len(hybrid.ranked) == 3
    assert [r.fused for r in hybrid.ranked] == hybrid.fused[:3] and hybrid.kept == hybrid.ranked
    assert hybrid.top_dense == hybrid.dense[0].score
    dense = retriever.retrieve(QUESTION, k=3, mode="dense")
    assert dense.lexical == [] and dense.dense == hybrid.dense and "lexical" not in dense.timings
    assert all(r.fused.lexical_rank is None for r in dense.ranked)
    lexical = retriever.retrieve(QUESTION, k=3, mode="lexical")
    assert lexical.dense == [] and lexical.lexical == hybrid.lexical and lexical.top_dense is None
    assert "embed" not in lexical.timings and all(r.fused.dense_rank is None for r in lexical.ranked)
    # a vector the caller already has is used as it is; k=0 ranks without fetching anything
    lists = retriever.retrieve(QUESTION, k=0, vector=embedder.embed_query(QUESTION))
    assert lists.ranked == [] and lists.dense == hybrid.dense and lists.fused == hybrid.fused
    assert "embed" not in lists.timings
    with pytest.raises(InvalidRequest):
        retriever.retrieve(QUESTION, k=3, mode="sparse")  # type: ignore[arg-type]
    # the pipeline passes its mode on (evaluation compares the retrievers this way)
    only_dense = QueryPipeline(settings, index, embedder, NoReranker(), None, mode="dense")
    result = only_dense.search(QUESTION, k=3)
    assert result.results and all(h.scores.lexical_rank is None for h in result.results)
    assert result.timings["lexical"] == 0.0


def test_bad_questions_are_refused_before_any_work(index: DocumentStore, embedder: Any) -> None:
    pipeline = make_pipeline(index, embedder, None)
    for question, k in (("   ", 3), (QUESTION, 0), (QUESTION, 10_000), ("x" * 5000, 3)):
        with pytest.raises(InvalidRequest):
            pipeline.search(question, k=k)
    with pytest.raises(InvalidRequest):
        asyncio.run(pipeline.ask(QUESTION))  # built without a gateway


# --- ask ------------------------------------------------------------------------------


def test_ask_answers_with_a_citation_to_the_right_page(
    index: DocumentStore, embedder: Any, tmp_path: Path
) -> None:
    async def three_times(pipeline: QueryPipeline) -> list[Answer]:
        first = await pipeline.ask(QUESTION)
        return [first, await pipeline.ask(QUESTION), await pipeline.ask(QUESTION, bypass_cache=True)]

    # the default chain: the offline extractive answerer, behind the real gateway and its cache
    answer, again, bypassed = with_gateway(index, embedder, tmp_path, three_times)
    assert not answer.abstained and "4.2 million" in answer.answer
    assert answer.citations and answer.citations[0].document_id == "harbor"
    assert 1 in answer.citations[0].pages and "4.2 million" in answer.citations[0].snippet
    assert answer.dropped_citations == 0 and not answer.uncited and answer.json_valid
    assert (answer.prompt.id, answer.prompt.version) == (PROMPT_ID, PROMPT_VERSION)
    assert answer.provider == "extractive" and not answer.cached and answer.answer_type == "answer"
    assert set(answer.timings) == set(STAGES) and answer.timings["total"] >= answer.timings["llm"] > 0
    assert answer.retrieval.sources >= 1
    assert 0 < answer.retrieval.packed_tokens <= answer.retrieval.budget == 400
    assert again.cached and again.answer == answer.answer
    assert not bypassed.cached
    Answer.model_validate_json(answer.model_dump_json())  # the answer object round-trips as JSON


def test_the_prompt_carries_merged_labelled_sources(
    index: DocumentStore, embedder: Any, tmp_path: Path, llm: FakeLLMServer
) -> None:
    overrides = scripted(llm, grounded("It handled 4.2 million containers [1].", [1]))
    answer = with_gateway(index, embedder, tmp_path, lambda p: p.ask(QUESTION), **overrides)
    (call,) = llm.calls()
    body = call["body"]
    assert body["response_format"] == {"type": "json_object"} or "json" in json.dumps(body).lower()
    system, user = body["messages"][0]["content"], body["messages"][-1]["content"]
    assert ABSTENTION_SENTENCE in system and QUESTION in user
    labels = re.findall(r"^\[(\d+)\] (.+) \(pp?\. ", user, flags=re.MULTILINE)
    assert [int(n) for n, _ in labels] == list(range(1, answer.retrieval.sources + 1))
    # the harbor chunks overlap (one spans the page break): one source, not three
    assert [name for _, name in labels].count("Harbor report.pdf") == 1
    # the budget is counted with the first provider's tokenizer (gpt-4o-mini: o200k)
    context = user.split("Sources:\n\n", 1)[1].rsplit("\n\nQuestion:", 1)[0]
    assert answer.retrieval.packed_tokens == count_tokens(context, "o200k_base")
    assert (answer.provider, answer.usage.input_tokens, answer.usage.output_tokens) == ("openai", 120, 9)
    assert answer.usage.cost > 0 and answer.citations[0].document_name == "Harbor report.pdf"


def test_nothing_above_the_floor_abstains_without_calling_the_model(
    index: DocumentStore, embedder: Any, tmp_path: Path, llm: FakeLLMServer
) -> None:
    overrides = scripted(llm, grounded("should never be asked [1]", [1]))
    # RRF scores are at most 2/(60+1); a floor of 0.5 keeps nothing
    answer = with_gateway(
        index, embedder, tmp_path, lambda p: p.ask(QUESTION), relevance_floor=0.5, **overrides
    )
    assert answer.abstained and answer.answer == ABSTENTION_SENTENCE
    assert answer.abstention_reason == "no_relevant_sources" and answer.citations == []
    assert llm.count() == 0 and answer.provider == "none"
    assert answer.retrieval.after_floor == 0 and answer.retrieval.floor_on == "fused"
    assert answer.retrieval.candidates > 0


def test_the_floor_keeps_what_scores_above_it(
    index: DocumentStore, embedder: Any, tmp_path: Path, llm: FakeLLMServer
) -> None:
    overrides = scripted(llm, grounded("It handled 4.2 million containers [1].", [1]))
    probe = make_pipeline(index, embedder, None).search(QUESTION, k=3)
    floor = probe.results[1].scores.fused  # keeps exactly the first two
    answer = with_gateway(
        index, embedder, tmp_path, lambda p: p.ask(QUESTION), relevance_floor=floor, **overrides
    )
    assert answer.retrieval.after_floor == sum(1 for r in probe.results if r.scores.fused >= floor) == 2
    assert answer.retrieval.floor == floor


def test_the_models_citations_are_checked(
    index: DocumentStore, embedder: Any, tmp_path: Path, llm: FakeLLMServer
) -> None:
    def ask(text: str) -> Answer:
        overrides = scripted(llm, text)
        return with_gateway(index, embedder, tmp_path, lambda p: p.ask(QUESTION), **overrides)

    invented = ask(grounded("It was 4.2 million [1][9].", [1, 9]))
    assert [c.n for c in invented.citations] == [1] and invented.dropped_citations == 1
    assert "[9]" not in invented.answer and not invented.uncited and invented.answer_type == "answer"
    bare = ask(grounded("It was 4.2 million.", []))
    assert bare.uncited and bare.citations == [] and not bare.abstained
    declined = ask(grounded(ABSTENTION_SENTENCE, [], abstained=True))
    assert (
        declined.abstained
        and declined.abstention_reason == "model"
        and declined.answer == ABSTENTION_SENTENCE
        and declined.answer_type == "abstained"
    )


def test_stream_sends_text_then_the_checked_answer(
    index: DocumentStore, embedder: Any, tmp_path: Path, llm: FakeLLMServer
) -> None:
    overrides = scripted(llm, "The port handled 4.2 million containers in 2022 [1][7].")

    async def collect(pipeline: QueryPipeline) -> list[StreamEvent]:
        return [event async for event in pipeline.stream(QUESTION)]

    events = with_gateway(index, embedder, tmp_path, collect, **overrides)
    assert len(events) > 2  # the fake streams in pieces
    assert [e.type for e in events[:-1]] == ["delta"] * (len(events) - 1) and events[-1].type == "answer"
    final = events[-1].answer
    assert final is not None and [c.n for c in final.citations] == [1] and final.dropped_citations == 1
    assert "".join(e.text for e in events[:-1]) == "The port handled 4.2 million containers in 2022 [1][7]."
    assert final.answer == "The port handled 4.2 million containers in 2022 [1]."
    assert llm.calls()[0]["body"]["stream"] is True and "response_format" not in llm.calls()[0]["body"]


# --- re-ranking in the pipeline ---------------------------------------------------------


@pytest.fixture(scope="module")
def rerank_server() -> Iterator[RerankServer]:
    with RerankServer() as server:
        yield server


def test_http_reranker_reorders_and_its_failure_falls_back_to_the_fused_order(
    index: DocumentStore, embedder: Any, rerank_server: RerankServer, tmp_path: Path
) -> None:
    question = "what did the terminal cost in euros"
    fused_only = make_pipeline(index, embedder, None).search(question, k=5)
    reranked_pipeline = make_pipeline(
        index,
        embedder,
        None,
        reranker="http",
        reranker_url=rerank_server.url,
        rerank_candidates=8,
    )
    rerank_server.set_mode("ok")
    reranked = reranked_pipeline.search(question, k=5)
    assert reranked.reranker.used and reranked.reranker.available
    scores = [r.scores.rerank for r in reranked.results]
    assert scores == [overlap_score(question, r.text) for r in reranked.results]
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert [r.chunk_id for r in reranked.results] != [r.chunk_id for r in fused_only.results]

    rerank_server.set_mode("error")
    try:
        failed = reranked_pipeline.search(question, k=5)
        answer = with_gateway(
            index,
            embedder,
            tmp_path,
            lambda p: p.ask(question),
            reranker="http",
            reranker_url=rerank_server.url,
            rerank_candidates=8,
        )
    finally:
        rerank_server.set_mode("ok")
    assert [r.chunk_id for r in failed.results] == [r.chunk_id for r in fused_only.results]
    assert all(r.scores.rerank is None for r in failed.results)
    assert not failed.reranker.used and failed.reranker.reason and "500" in failed.reranker.reason
    assert not answer.abstained and answer.citations
    assert not answer.reranker.used and "500" in (answer.reranker.reason or "")


def test_rerank_floor_applies_to_rerank_scores_and_not_after_a_failure(
    index: DocumentStore, embedder: Any, rerank_server: RerankServer, tmp_path: Path
) -> None:
    question = "crane terminal cost"
    settings = {"reranker": "http", "reranker_url": rerank_server.url, "relevance_floor": 0.6}
    rerank_server.set_mode("ok")
    pool = make_pipeline(index, embedder, None, **settings).search(question, k=8)
    expected = sum(1 for r in pool.results if (r.scores.rerank or 0) >= 0.6)
    answer = with_gateway(index, embedder, tmp_path, lambda p: p.ask(question), **settings)
    assert answer.retrieval.floor_on == "rerank" and answer.retrieval.after_floor == expected >= 1
    rerank_server.set_mode("error")
    try:
        fallback = with_gateway(index, embedder, tmp_path, lambda p: p.ask(question), **settings)
    finally:
        rerank_server.set_mode("ok")
    # a floor set for re-rank scores means nothing on fused ones: it is not applied
    assert fallback.retrieval.floor_on is None and fallback.retrieval.after_floor > 0


def test_local_cross_encoder_orders_by_the_models_scores(
    index: DocumentStore, embedder: Any, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from sentence_transformers import CrossEncoder

    from tests.rag.test_rerank import build_tiny_cross_encoder

    path = build_tiny_cross_encoder(tmp_path_factory.mktemp("ce"))
    pipeline = make_pipeline(index, embedder, None, reranker="cross-encoder", reranker_model=path)
    result = pipeline.search(QUESTION, k=6)
    assert result.reranker.used and result.reranker.name == f"cross-encoder:{path}"
    predicted = CrossEncoder(path).predict([(QUESTION, r.text) for r in result.results])
    assert [r.scores.rerank for r in result.results] == pytest.approx([float(p) for p in predicted], abs=1e-6)
    reranks = [r.scores.rerank or 0.0 for r in result.results]
    assert reranks == sorted(reranks, reverse=True)
    fused = [r.scores.fused for r in result.results]
    assert fused != sorted(fused, reverse=True)  # the model's order, not the fused one


def test_an_unavailable_reranker_is_reported_on_every_answer(
    index: DocumentStore, embedder: Any, tmp_path: Path
) -> None:
    answer = with_gateway(index, embedder, tmp_path, lambda p: p.ask(QUESTION), reranker="cross-encoder")
    assert not answer.reranker.available and not answer.reranker.used
    assert answer.reranker.reason and "ms-marco" in answer.reranker.reason
    assert answer.retrieval.floor_on is None  # no floor configured
    assert isinstance(make_pipeline(index, embedder, None).reranker, NoReranker)


def test_dense_floor_abstains_when_nothing_is_close_enough(
    index: DocumentStore, embedder: Any, tmp_path: Path
) -> None:
    def ask(question: str) -> Answer:
        return with_gateway(
            index,
            embedder,
            tmp_path / "var",
            lambda p: p.ask(question),
            llm_chain="extractive",
            dense_floor=0.45,
        )

    unrelated = ask("What is the boiling point of liquid nitrogen at sea level?")
    assert unrelated.abstained and unrelated.abstention_reason == "no_relevant_sources"
    assert unrelated.answer_type == "abstained"
    assert unrelated.retrieval.top_dense is not None and unrelated.retrieval.top_dense < 0.45
    related = ask(QUESTION)
    assert not related.abstained and related.retrieval.top_dense is not None
    assert related.retrieval.top_dense >= 0.45
