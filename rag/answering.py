"""The query pipeline: retrieve, pack, prompt, gateway, check.

- retrieve: ``rag.retrieval.Retriever`` (embed, dense, lexical, fuse, fetch, re-rank, floors);
- pack: the best sources into the token budget, labelled ``[1]..[n]`` (``rag.packing``);
- prompt: the versioned prompt around them (``rag.prompts``);
- gateway: the LLM, behind cache, fallbacks, retries and budgets (``rag.llm``);
- check: the reply's citations against the sources it was given (``rag.citations``).

Retrieval and packing are synchronous and run in a worker thread under ``ask``/``stream`` so
the event loop stays free. The response shapes are in ``rag.answer``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

from rag.answer import (
    Answer,
    AnswerType,
    RetrievalInfo,
    Scores,
    SearchHit,
    SearchResult,
    StreamEvent,
    UsageInfo,
)
from rag.citations import check_answer
from rag.errors import InvalidRequest
from rag.expansion import with_neighbours
from rag.index.base import IndexReader
from rag.llm.schema import ABSTENTION_SENTENCE, is_evidence
from rag.llm.types import LLMRequest, LLMResponse, StreamDelta
from rag.logs import log_event
from rag.packing import Candidate, ContextPacker, PackedContext
from rag.prompts import build_request
from rag.rerank.base import Reranker
from rag.retrieval import RETRIEVAL_STAGES, QueryEmbedder, Retrieval, RetrievalMode, Retriever
from rag.settings import Settings
from rag.tracing import tracer
from rag.types import Filters

logger = logging.getLogger(__name__)

STAGES = (*RETRIEVAL_STAGES, "pack", "llm", "total")


class AnswerGateway(Protocol):
    """What the pipeline needs of the LLM gateway."""

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamDelta]: ...


@dataclass(slots=True)
class Prepared:
    """Everything before the LLM: the retrieval, the packed context and what the answer reports of them."""

    retrieval: Retrieval
    packed: PackedContext
    info: RetrievalInfo


def _primary_model(gateway: object) -> str | None:
    """The model the gateway tries first: its tokenizer is the one the budget must hold for."""
    lanes = getattr(gateway, "lanes", None)
    model = getattr(lanes[0], "model", None) if lanes else None
    return model if isinstance(model, str) and model else None


class QueryPipeline:
    def __init__(
        self,
        settings: Settings,
        index: IndexReader,
        embedder: QueryEmbedder,
        reranker: Reranker,
        gateway: AnswerGateway | None,
        *,
        budget_model: str | None = None,
        json_mode: bool = True,
        mode: RetrievalMode = "hybrid",
    ) -> None:
        """``budget_model`` names the model whose tokenizer counts the context budget (default:
        the gateway's first provider); ``json_mode`` asks ``ask`` for JSON (``stream`` asks for text);
        ``mode`` leaves one retriever out (evaluation compares them)."""
        self.settings = settings
        self.retriever = Retriever(settings, index, embedder, reranker)
        self.mode: RetrievalMode = mode
        self.gateway = gateway
        self.json_mode = json_mode
        self.packer = ContextPacker(
            settings.context_budget_tokens,
            model=budget_model or _primary_model(gateway),
            encoding=settings.tiktoken_encoding,
        )

    @property
    def reranker(self) -> Reranker:
        return self.retriever.reranker

    def _check(self, question: str, k: int | None) -> tuple[str, int]:
        question = (question or "").strip()
        if not question:
            raise InvalidRequest("the question is empty")
        if len(question) > self.settings.max_question_chars:
            raise InvalidRequest(f"the question is longer than {self.settings.max_question_chars} characters")
        k = self.settings.top_k if k is None else k
        if not 1 <= k <= self.settings.max_top_k:
            raise InvalidRequest(f"k must be between 1 and {self.settings.max_top_k}")
        return question, k

    def _retrieve(self, question: str, collection: str | None, filters: Filters | None, k: int) -> Retrieval:
        return self.retriever.retrieve(question, collection=collection, filters=filters, k=k, mode=self.mode)

    # --- search: retrieval only -------------------------------------------------------

    def search(
        self,
        question: str,
        collection: str | None = None,
        filters: Filters | None = None,
        k: int | None = None,
    ) -> SearchResult:
        """Inspect retrieval: every stage's scores, best first, no relevance floor."""
        started = time.perf_counter()
        question, k = self._check(question, k)
        retrieval = self._retrieve(question, collection, filters, k)
        results = [
            SearchHit(
                chunk_id=r.stored.chunk.id,
                document_id=r.stored.chunk.doc_id,
                document_name=r.stored.document_name,
                page_start=r.stored.chunk.page_start,
                page_end=r.stored.chunk.page_end,
                text=r.stored.chunk.text,
                scores=Scores(
                    dense_rank=r.fused.dense_rank,
                    lexical_rank=r.fused.lexical_rank,
                    dense=r.fused.dense,
                    lexical=r.fused.lexical,
                    fused=r.fused.fused,
                    rerank=r.rerank,
                ),
            )
            for r in retrieval.ranked[:k]
        ]
        timings = {name: retrieval.timings.get(name, 0.0) for name in RETRIEVAL_STAGES}
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return SearchResult(
            results=results, candidates=retrieval.candidates, reranker=retrieval.reranker, timings=timings
        )

    # --- answering: retrieve, pack, prompt, gateway, check ---------------------------

    def pack(self, retrieval: Retrieval, k: int) -> PackedContext:
        """The ``k`` best kept chunks (and, small to big, their neighbours) in the context budget."""
        retrieved = [Candidate(r.stored, r.score) for r in retrieval.kept[:k]]
        return self.packer.pack(
            with_neighbours(retrieved, self.retriever.index, self.settings.pack_neighbours)
        )

    def prepare(self, question: str, collection: str | None, filters: Filters | None, k: int) -> Prepared:
        """Retrieve and pack: everything before the LLM (benchmarks time this)."""
        retrieval = self._retrieve(question, collection, filters, k)
        started = time.perf_counter()
        with tracer.start_as_current_span("pack") as span:
            packed = self.pack(retrieval, k)
            span.set_attributes({"rag.sources": len(packed.sources), "rag.packed_tokens": packed.tokens_used})
        retrieval.timings["pack"] = round((time.perf_counter() - started) * 1000, 3)
        info = RetrievalInfo(
            candidates=retrieval.candidates,
            after_floor=len(retrieval.kept),
            floor=retrieval.floor,
            floor_on=retrieval.floor_on if retrieval.floor is not None else None,
            top_dense=retrieval.top_dense,
            sources=len(packed.sources),
            packed_tokens=packed.tokens_used,
            budget=packed.budget,
            dropped=packed.dropped,
        )
        return Prepared(retrieval, packed, info)

    def _prompt(
        self,
        question: str,
        packed: PackedContext,
        *,
        json_mode: bool,
        bypass_cache: bool,
        api_key_id: str | None,
    ) -> LLMRequest:
        return build_request(
            question,
            packed,
            json_mode=json_mode,
            max_tokens=self.settings.llm_max_tokens,
            temperature=self.settings.llm_temperature,
            bypass_cache=bypass_cache,
            api_key_id=api_key_id,
        )

    def _gateway(self) -> AnswerGateway:
        if self.gateway is None:
            raise InvalidRequest("this pipeline was built without an LLM gateway; use search")
        return self.gateway

    async def ask(
        self,
        question: str,
        collection: str | None = None,
        filters: Filters | None = None,
        top_k: int | None = None,
        api_key_id: str | None = None,
        bypass_cache: bool = False,
    ) -> Answer:
        started = time.perf_counter()
        question, k = self._check(question, top_k)
        gateway = self._gateway()
        prepared = await asyncio.to_thread(self.prepare, question, collection, filters, k)
        if not prepared.packed.sources:
            return self._no_sources(prepared, started)
        request = self._prompt(
            question,
            prepared.packed,
            json_mode=self.json_mode,
            bypass_cache=bypass_cache,
            api_key_id=api_key_id,
        )
        t = time.perf_counter()
        with tracer.start_as_current_span("llm") as span:  # each attempt is a child span
            response = await gateway.complete(request)
            span.set_attributes(
                {
                    "llm.provider": response.provider,
                    "llm.model": response.model,
                    "llm.cache_hit": response.cached,
                    "llm.input_tokens": response.usage.input_tokens,
                    "llm.output_tokens": response.usage.output_tokens,
                }
            )
        llm_ms = (time.perf_counter() - t) * 1000
        return self._checked(
            response.text, response, prepared, json_mode=self.json_mode, llm_ms=llm_ms, started=started
        )

    async def stream(
        self,
        question: str,
        collection: str | None = None,
        filters: Filters | None = None,
        top_k: int | None = None,
        api_key_id: str | None = None,
        bypass_cache: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        started = time.perf_counter()
        question, k = self._check(question, top_k)
        gateway = self._gateway()
        prepared = await asyncio.to_thread(self.prepare, question, collection, filters, k)
        if not prepared.packed.sources:
            answer = self._no_sources(prepared, started)
            yield StreamEvent(type="delta", text=answer.answer)
            yield StreamEvent(type="answer", answer=answer)
            return
        request = self._prompt(
            question, prepared.packed, json_mode=False, bypass_cache=bypass_cache, api_key_id=api_key_id
        )
        t = time.perf_counter()
        parts: list[str] = []
        response: LLMResponse | None = None
        async for delta in gateway.stream(request):
            if delta.text:
                parts.append(delta.text)
                yield StreamEvent(type="delta", text=delta.text)
            if delta.done:
                response = delta.response
                break
        llm_ms = (time.perf_counter() - t) * 1000
        text = "".join(parts)
        if response is None:
            response = LLMResponse(text=text, provider="unknown", model="")
        answer = self._checked(
            response.text or text, response, prepared, json_mode=False, llm_ms=llm_ms, started=started
        )
        yield StreamEvent(type="answer", answer=answer)

    # --- the answer object ------------------------------------------------------------

    @staticmethod
    def _timings(retrieval: Retrieval, llm_ms: float, started: float) -> dict[str, float]:
        timings = {name: retrieval.timings.get(name, 0.0) for name in STAGES}
        timings["llm"] = round(llm_ms, 3)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return timings

    def _no_sources(self, prepared: Prepared, started: float) -> Answer:
        return Answer(
            answer=ABSTENTION_SENTENCE,
            abstained=True,
            answer_type="abstained",
            timings=self._timings(prepared.retrieval, 0.0, started),
            reranker=prepared.retrieval.reranker,
            retrieval=prepared.info,
            abstention_reason="no_relevant_sources",
        )

    def _checked(
        self,
        text: str,
        response: LLMResponse,
        prepared: Prepared,
        *,
        json_mode: bool,
        llm_ms: float,
        started: float,
    ) -> Answer:
        """The model's reply checked against the sources it was given, as the answer object."""
        checked = check_answer(text, prepared.packed.sources, json_mode=json_mode)
        # an evidence answer says so in its first sentence, in JSON and text mode alike
        answer_type: AnswerType = "answer"
        if checked.abstained:
            answer_type = "abstained"
        elif is_evidence(checked.text):
            answer_type = "evidence"
        answer = Answer(
            answer=checked.text,
            abstained=checked.abstained,
            answer_type=answer_type,
            citations=checked.citations,
            provider=response.provider,
            model=response.model,
            cached=response.cached,
            usage=UsageInfo(
                input_tokens=response.usage.input_tokens,
                output_tokens=response.usage.output_tokens,
                cost=response.usage.cost,
                estimated=response.usage.estimated,
            ),
            timings=self._timings(prepared.retrieval, llm_ms, started),
            reranker=prepared.retrieval.reranker,
            retrieval=prepared.info,
            dropped_citations=checked.dropped,
            uncited=checked.uncited,
            abstention_reason="model" if checked.abstained else None,
            json_valid=checked.json_valid,
        )
        log_event(
            logger,
            "answered",
            level=logging.INFO,
            provider=answer.provider,
            cached=answer.cached,
            abstained=answer.abstained,
            answer_type=answer.answer_type,
            citations=len(answer.citations),
            dropped_citations=answer.dropped_citations,
            uncited=answer.uncited,
            reranker_used=answer.reranker.used,
            **{f"{k}_ms": v for k, v in answer.timings.items()},
        )
        return answer
