"""The query pipeline: retrieve, fuse, re-rank, cut, pack, ask, check.

Retrieval is synchronous (torch, Chroma and BM25 block) and runs in a worker thread under
``ask``/``stream`` so the event loop stays free. Only the re-ranker may fail softly: its
failure is recorded on the answer and the fused order stands. Everything else that fails
raises from ``rag.errors``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, Field

from rag.citations import Citation, check_answer
from rag.errors import InvalidRequest, RagError
from rag.fusion import FusedHit, fuse
from rag.llm.schema import ABSTENTION_SENTENCE
from rag.llm.types import LLMRequest, LLMResponse, StreamDelta
from rag.logs import log_event
from rag.packing import Candidate, ContextPacker, PackedContext
from rag.prompts import PROMPT_ID, PROMPT_VERSION, build_request
from rag.rerank.base import Reranker
from rag.settings import Settings
from rag.types import Filters, Hit, StoredChunk

logger = logging.getLogger(__name__)

STAGES = ("embed", "dense", "lexical", "fuse", "fetch", "rerank", "pack", "llm", "total")


class ReadIndex(Protocol):
    """The read half of ``rag.index.base.Index``: all a query needs."""

    def dense(
        self, query_vec: npt.NDArray[np.float32], k: int, collection: str, filters: Filters | None = None
    ) -> list[Hit]: ...

    def lexical(self, query: str, k: int, collection: str, filters: Filters | None = None) -> list[Hit]: ...

    def get(self, chunk_ids: list[str]) -> list[StoredChunk]: ...


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> npt.NDArray[np.float32]: ...


class AnswerGateway(Protocol):
    """What the pipeline needs of the LLM gateway."""

    async def complete(self, request: LLMRequest) -> LLMResponse: ...

    def stream(self, request: LLMRequest) -> AsyncIterator[StreamDelta]: ...


# --- what callers get back ---------------------------------------------------------------


class Scores(BaseModel):
    dense_rank: int | None = None
    lexical_rank: int | None = None
    dense: float | None = None
    lexical: float | None = None
    fused: float
    rerank: float | None = None


class SearchHit(BaseModel):
    chunk_id: str
    document_id: str
    document_name: str
    page_start: int
    page_end: int
    text: str
    scores: Scores


class RerankerInfo(BaseModel):
    name: str
    available: bool
    used: bool = False
    reason: str | None = None


class SearchResult(BaseModel):
    results: list[SearchHit]
    candidates: int
    reranker: RerankerInfo
    timings: dict[str, float]


class UsageInfo(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    estimated: bool = False


class PromptInfo(BaseModel):
    id: str = PROMPT_ID
    version: str = PROMPT_VERSION


class RetrievalInfo(BaseModel):
    candidates: int = 0
    """Chunks either retriever returned (after fusion, before any cut)."""
    after_floor: int = 0
    floor: float | None = None
    floor_on: Literal["rerank", "fused"] | None = None
    """Which score the floor was applied to; ``None`` when it was not applied."""
    top_dense: float | None = None
    """The best dense cosine similarity, compared with ``dense_floor``."""
    sources: int = 0
    packed_tokens: int = 0
    budget: int = 0
    dropped: dict[str, int] = Field(default_factory=dict)


class Answer(BaseModel):
    answer: str
    abstained: bool
    citations: list[Citation] = Field(default_factory=list)
    provider: str = "none"
    model: str = ""
    cached: bool = False
    usage: UsageInfo = Field(default_factory=UsageInfo)
    timings: dict[str, float] = Field(default_factory=dict)
    prompt: PromptInfo = Field(default_factory=PromptInfo)
    reranker: RerankerInfo
    retrieval: RetrievalInfo = Field(default_factory=RetrievalInfo)
    dropped_citations: int = 0
    uncited: bool = False
    abstention_reason: Literal["no_relevant_sources", "model"] | None = None
    json_valid: bool | None = None


class StreamEvent(BaseModel):
    """``delta`` events carry text as the model writes it; the last event is the checked ``answer``."""

    type: Literal["delta", "answer"]
    text: str = ""
    answer: Answer | None = None


# --- internals ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Ranked:
    fused: FusedHit
    stored: StoredChunk
    rerank: float | None = None

    @property
    def score(self) -> float:
        return self.rerank if self.rerank is not None else self.fused.fused


@dataclass(slots=True)
class _Retrieval:
    ranked: list[_Ranked]
    candidates: int
    reranker: RerankerInfo
    timings: dict[str, float] = field(default_factory=dict)
    floor_on: Literal["rerank", "fused"] | None = None
    top_dense: float | None = None


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def stage(self, name: str) -> AbstractContextManager[None]:
        clock = self

        class _Stage:
            def __enter__(self) -> None:
                self.t = time.perf_counter()

            def __exit__(self, *exc: object) -> None:
                elapsed = (time.perf_counter() - self.t) * 1000
                clock.timings[name] = round(clock.timings.get(name, 0.0) + elapsed, 3)

        return _Stage()


def _primary_model(gateway: object) -> str | None:
    """The model the gateway tries first: its tokenizer is the one the budget must hold for."""
    lanes = getattr(gateway, "lanes", None)
    model = getattr(lanes[0], "model", None) if lanes else None
    return model if isinstance(model, str) and model else None


class QueryPipeline:
    def __init__(
        self,
        settings: Settings,
        index: ReadIndex,
        embedder: QueryEmbedder,
        reranker: Reranker,
        gateway: AnswerGateway | None,
        *,
        budget_model: str | None = None,
        json_mode: bool = True,
    ) -> None:
        """``budget_model`` names the model whose tokenizer counts the context budget (default:
        the gateway's first provider); ``json_mode`` asks ``ask`` for JSON (``stream`` asks for text)."""
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.gateway = gateway
        self.json_mode = json_mode
        self.packer = ContextPacker(
            settings.context_budget_tokens,
            model=budget_model or _primary_model(gateway),
            encoding=settings.tiktoken_encoding,
        )

    # --- validation -----------------------------------------------------------------

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

    def _reranker_info(self, used: bool = False, reason: str | None = None) -> RerankerInfo:
        r = self.reranker
        return RerankerInfo(name=r.name, available=r.available, used=used, reason=reason or r.reason)

    # --- retrieval ------------------------------------------------------------------

    def _consistent_read(self) -> AbstractContextManager[Any]:
        # the embedded index can pin one version for the searches and the get of one query
        hold = getattr(self.index, "consistent_read", None)
        return hold() if callable(hold) else nullcontext()

    def _retrieve(self, question: str, collection: str | None, filters: Filters | None, k: int) -> _Retrieval:
        s = self.settings
        clock = _Clock()
        collection = collection or s.default_collection
        with clock.stage("embed"):
            vector = self.embedder.embed_query(question)
        with self._consistent_read():
            with clock.stage("dense"):
                dense = self.index.dense(vector, s.dense_k, collection, filters)
            with clock.stage("lexical"):
                lexical = self.index.lexical(question, s.lexical_k, collection, filters)
            with clock.stage("fuse"):
                fused = fuse(dense, lexical, s.fusion, rrf_k=s.rrf_k, dense_weight=s.fusion_dense_weight)
            pool_size = max(k, s.rerank_candidates) if self.reranker.available else k
            pool = fused[:pool_size]
            with clock.stage("fetch"):
                stored = {c.chunk.id: c for c in self.index.get([h.chunk_id for h in pool])}
        # a chunk whose document was replaced between search and get is simply gone
        ranked = [_Ranked(h, stored[h.chunk_id]) for h in pool if h.chunk_id in stored]
        info = self._reranker_info()
        floor_on: Literal["rerank", "fused"] | None = "fused"
        if self.reranker.available and ranked:
            floor_on = None  # a floor calibrated on re-rank scores means nothing on fused ones
            with clock.stage("rerank"):
                try:
                    scores = self.reranker.score(question, [r.stored.chunk.text for r in ranked])
                    if len(scores) != len(ranked):
                        raise RagError(f"re-ranker returned {len(scores)} scores for {len(ranked)} passages")
                except Exception as exc:  # the re-ranker only improves the order; never fail for it
                    reason = exc.message if isinstance(exc, RagError) else f"{exc.__class__.__name__}: {exc}"
                    info = self._reranker_info(used=False, reason=reason)
                    log_event(
                        logger, "rerank_failed", logging.WARNING, reranker=self.reranker.name, reason=reason
                    )
                else:
                    for r, score in zip(ranked, scores, strict=True):
                        r.rerank = score
                    ranked.sort(key=lambda r: -r.score)  # stable: ties keep the fused order
                    info = self._reranker_info(used=True)
                    floor_on = "rerank"
        top_dense = dense[0].score if dense else None
        return _Retrieval(ranked, len(fused), info, clock.timings, floor_on, top_dense)

    def _apply_floor(self, retrieval: _Retrieval) -> list[_Ranked]:
        # The question's best cosine is the one signal measured to separate answerable from
        # unanswerable questions without a trained re-ranker (see the README): below it, abstain.
        dense_floor = self.settings.dense_floor
        if dense_floor is not None and (retrieval.top_dense is None or retrieval.top_dense < dense_floor):
            return []
        floor = self.settings.relevance_floor
        if floor is None or retrieval.floor_on is None:
            return retrieval.ranked
        return [r for r in retrieval.ranked if r.score >= floor]

    # --- search ---------------------------------------------------------------------

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
        timings = {name: retrieval.timings.get(name, 0.0) for name in STAGES if name not in ("pack", "llm")}
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return SearchResult(
            results=results, candidates=retrieval.candidates, reranker=retrieval.reranker, timings=timings
        )

    # --- answering ------------------------------------------------------------------

    def prepare(
        self, question: str, collection: str | None, filters: Filters | None, k: int
    ) -> tuple[_Retrieval, RetrievalInfo, PackedContext]:
        """Retrieval, relevance floor and packing: everything before the LLM (benchmarks time this)."""
        retrieval = self._retrieve(question, collection, filters, k)
        kept = self._apply_floor(retrieval)
        clock = _Clock()
        with clock.stage("pack"):
            packed = self.packer.pack([Candidate(r.stored, r.score) for r in kept[:k]])
        retrieval.timings["pack"] = clock.timings["pack"]
        applied = self.settings.relevance_floor is not None and retrieval.floor_on is not None
        info = RetrievalInfo(
            candidates=retrieval.candidates,
            after_floor=len(kept),
            floor=self.settings.relevance_floor if applied else None,
            floor_on=retrieval.floor_on if applied else None,
            top_dense=retrieval.top_dense,
            sources=len(packed.sources),
            packed_tokens=packed.tokens_used,
            budget=packed.budget,
            dropped=packed.dropped,
        )
        return retrieval, info, packed

    def _request(
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

    @staticmethod
    def _timings(retrieval: _Retrieval, llm_ms: float, started: float) -> dict[str, float]:
        timings = {name: retrieval.timings.get(name, 0.0) for name in STAGES}
        timings["llm"] = round(llm_ms, 3)
        timings["total"] = round((time.perf_counter() - started) * 1000, 3)
        return timings

    def _no_sources(self, retrieval: _Retrieval, info: RetrievalInfo, started: float) -> Answer:
        return Answer(
            answer=ABSTENTION_SENTENCE,
            abstained=True,
            timings=self._timings(retrieval, 0.0, started),
            reranker=retrieval.reranker,
            retrieval=info,
            abstention_reason="no_relevant_sources",
        )

    def _finish(
        self,
        text: str,
        response: LLMResponse,
        packed: PackedContext,
        retrieval: _Retrieval,
        info: RetrievalInfo,
        *,
        json_mode: bool,
        llm_ms: float,
        started: float,
    ) -> Answer:
        checked = check_answer(text, packed.sources, json_mode=json_mode)
        answer = Answer(
            answer=checked.text,
            abstained=checked.abstained,
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
            timings=self._timings(retrieval, llm_ms, started),
            reranker=retrieval.reranker,
            retrieval=info,
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
            citations=len(answer.citations),
            dropped_citations=answer.dropped_citations,
            uncited=answer.uncited,
            reranker_used=answer.reranker.used,
            **{f"{k}_ms": v for k, v in answer.timings.items()},
        )
        return answer

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
        retrieval, info, packed = await asyncio.to_thread(self.prepare, question, collection, filters, k)
        if not packed.sources:
            return self._no_sources(retrieval, info, started)
        request = self._request(
            question, packed, json_mode=self.json_mode, bypass_cache=bypass_cache, api_key_id=api_key_id
        )
        t = time.perf_counter()
        response = await gateway.complete(request)
        llm_ms = (time.perf_counter() - t) * 1000
        return self._finish(
            response.text,
            response,
            packed,
            retrieval,
            info,
            json_mode=self.json_mode,
            llm_ms=llm_ms,
            started=started,
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
        retrieval, info, packed = await asyncio.to_thread(self.prepare, question, collection, filters, k)
        if not packed.sources:
            answer = self._no_sources(retrieval, info, started)
            yield StreamEvent(type="delta", text=answer.answer)
            yield StreamEvent(type="answer", answer=answer)
            return
        request = self._request(
            question, packed, json_mode=False, bypass_cache=bypass_cache, api_key_id=api_key_id
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
        answer = self._finish(
            response.text or text,
            response,
            packed,
            retrieval,
            info,
            json_mode=False,
            llm_ms=llm_ms,
            started=started,
        )
        yield StreamEvent(type="answer", answer=answer)
