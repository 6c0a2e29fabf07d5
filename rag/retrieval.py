"""The retrieval stage: embed the query, search dense and lexical, fuse, fetch, re-rank, floor.

One entry point, :meth:`Retriever.retrieve`, for the query pipeline, evaluation and the
experiments alike; ``mode`` switches one retriever off (``dense`` or ``lexical`` only) for
comparisons. Retrieval is synchronous (torch, Chroma and BM25 block). Only the re-ranker may
fail softly: its failure is recorded on the result and the fused order stands. Everything
else that fails raises from ``rag.errors`` (a backend that cannot answer: ``IndexUnavailable``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, get_args, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.answer import RerankerInfo
from rag.errors import InvalidRequest, RagError
from rag.fusion import FusedHit, fuse
from rag.index.base import IndexReader
from rag.logs import log_event
from rag.rerank.base import Reranker
from rag.settings import Settings
from rag.statements import implied_statements, named_statements, statement_of
from rag.tracing import tracer
from rag.types import Filters, Hit, StoredChunk
from rag.vocabulary import query_vocabulary

__all__ = [
    "RETRIEVAL_MODES",
    "RETRIEVAL_STAGES",
    "CollectionEmbedder",
    "QueryEmbedder",
    "Ranked",
    "Retrieval",
    "RetrievalMode",
    "Retriever",
]

logger = logging.getLogger(__name__)

RetrievalMode = Literal["hybrid", "dense", "lexical"]
RETRIEVAL_MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)
RETRIEVAL_STAGES = ("embed", "names", "dense", "lexical", "fuse", "fetch", "rerank")
"""Timed stages, in order; a stage that did not run is absent from ``Retrieval.timings``."""

FloorOn = Literal["rerank", "fused"]


class QueryEmbedder(Protocol):
    def embed_query(self, text: str) -> npt.NDArray[np.float32]: ...


@runtime_checkable
class CollectionEmbedder(QueryEmbedder, Protocol):
    """An embedder that knows each collection's model (collections re-indexed with another one)."""

    def for_collection(self, collection: str | None) -> QueryEmbedder: ...


@dataclass(slots=True)
class Ranked:
    """A fetched candidate: what fusion said of it, the chunk itself, and the re-ranker's score."""

    fused: FusedHit
    stored: StoredChunk
    rerank: float | None = None

    @property
    def score(self) -> float:
        """What it is ranked (and floored) by: the re-rank score, else the fused one."""
        return self.rerank if self.rerank is not None else self.fused.fused


@dataclass(slots=True)
class Retrieval:
    """One question's retrieval, every stage kept so callers can report or re-score it."""

    ranked: list[Ranked]
    """The fetched candidates, best first (in the re-ranker's order when it ran); no floor."""
    kept: list[Ranked]
    """``ranked`` after the dense floor and the relevance floor: what may be packed."""
    candidates: int
    """Chunks either retriever returned (after fusion, before any cut)."""
    reranker: RerankerInfo
    timings: dict[str, float] = field(default_factory=dict)
    floor_on: FloorOn | None = None
    """The score a relevance floor applies to: ``fused``, ``rerank``, or ``None`` when a floor
    calibrated on re-rank scores would have to judge fused ones (the re-ranker failed)."""
    floor: float | None = None
    """The relevance floor applied to ``kept``; ``None`` when none was."""
    top_dense: float | None = None
    """The best dense cosine similarity, compared with ``dense_floor``."""
    dense: list[Hit] = field(default_factory=list)
    lexical: list[Hit] = field(default_factory=list)
    fused: list[FusedHit] = field(default_factory=list)


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage, and trace it (a span per stage, under the request's span)."""
        started = time.perf_counter()
        try:
            with tracer.start_as_current_span(name):
                yield
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            self.timings[name] = round(self.timings.get(name, 0.0) + elapsed, 3)


@dataclass(frozen=True, slots=True)
class _Named:
    weights: dict[str, float]
    """Document id -> how strongly the question names it, in (0, 1]."""
    searched: list[str]
    """The best-named documents, searched on their own."""

    def boost(self, fused: list[FusedHit], boost: float) -> list[FusedHit]:
        """Scale the fused scores of named documents' chunks; best first again (stable on ties)."""
        lifted = [
            replace(h, fused=h.fused * (1 + boost * self.weights[h.doc_id]))
            if h.doc_id in self.weights
            else h
            for h in fused
        ]
        return sorted(lifted, key=lambda h: -h.fused)


def _union(results: list[list[Hit]]) -> list[Hit]:
    """Several searches of one retriever as one list: each chunk once, at its best score, re-ranked."""
    if len(results) == 1:
        return results[0]
    best: dict[str, Hit] = {}
    for hits in results:
        for hit in hits:
            if hit.chunk_id not in best or hit.score > best[hit.chunk_id].score:
                best[hit.chunk_id] = hit
    ordered = sorted(best.values(), key=lambda h: (-h.score, h.chunk_id))
    return [replace(h, rank=rank) for rank, h in enumerate(ordered, start=1)]


DEEPER_POOL = 3
"""With statements boosted or pages spread and no re-ranker, three times the pool is fetched."""


def boost_statements(ranked: list[Ranked], kinds: frozenset[str], boost: float) -> list[Ranked]:
    """``ranked`` re-sorted with the fused score of chunks titled as one of the ``kinds`` of
    statement multiplied by ``1 + boost`` (a stable sort: ties keep their order)."""
    for r in ranked:
        chunk = r.stored.chunk
        if statement_of(chunk.context, chunk.text, kinds):
            r.fused = replace(r.fused, fused=r.fused.fused * (1 + boost))
    return sorted(ranked, key=lambda r: -r.fused.fused)


def spread_pages(ranked: list[Ranked], per_page: int) -> list[Ranked]:
    """``ranked`` with every candidate past the first ``per_page`` of its page moved behind the
    rest, each group keeping its order: a page's best chunk keeps its place, its others wait."""
    seen: dict[tuple[str, int], int] = {}
    first: list[Ranked] = []
    later: list[Ranked] = []
    for r in ranked:
        page = (r.stored.chunk.doc_id, r.stored.chunk.page_start)
        seen[page] = seen.get(page, 0) + 1
        (first if seen[page] <= per_page else later).append(r)
    return first + later


class Retriever:
    def __init__(
        self, settings: Settings, index: IndexReader, embedder: QueryEmbedder, reranker: Reranker
    ) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.reranker = reranker
        self.vocabulary = query_vocabulary(
            settings.query_vocabulary, fiscal_years=settings.query_fiscal_years
        )

    def reranker_info(self, used: bool = False, reason: str | None = None) -> RerankerInfo:
        r = self.reranker
        return RerankerInfo(name=r.name, available=r.available, used=used, reason=reason or r.reason)

    def retrieve(
        self,
        question: str,
        *,
        collection: str | None = None,
        filters: Filters | None = None,
        k: int,
        mode: RetrievalMode = "hybrid",
        vector: npt.NDArray[np.float32] | None = None,
    ) -> Retrieval:
        """Retrieve for one (already validated) question.

        ``k`` fused candidates are fetched (``rerank_candidates`` of them when a re-ranker is
        available, if that is more); ``k=0`` with no re-ranker fetches nothing and returns the
        ranked lists only. ``vector`` is the question's embedding when the caller already has it.
        ``dense`` and ``lexical`` modes leave the other retriever out (its list stays empty).
        """
        if mode not in RETRIEVAL_MODES:
            raise InvalidRequest(f"retrieval mode must be one of {', '.join(RETRIEVAL_MODES)}, not {mode!r}")
        s = self.settings
        clock = _Clock()
        collection = collection or s.default_collection
        if mode != "lexical" and vector is None:
            with clock.stage("embed"):
                embedder = self.embedder
                if isinstance(embedder, CollectionEmbedder):
                    embedder = embedder.for_collection(collection)
                vector = embedder.embed_query(question)
        dense: list[Hit] = []
        lexical: list[Hit] = []
        with self.index.consistent_read():
            with clock.stage("names"):
                named = self._named(question, collection, filters)
            # the documents the question names are also searched on their own, so that in a
            # collection of look-alike filings their chunks are among the candidates at all
            searches = [filters, {**(filters or {}), "document_id": named.searched}] if named else [filters]
            if vector is not None and mode != "lexical":
                with clock.stage("dense"):
                    dense = _union([self.index.dense(vector, s.dense_k, collection, f) for f in searches])
            if mode != "dense":
                with clock.stage("lexical"):
                    keywords = self.vocabulary.expand(question)
                    lexical = _union(
                        [self.index.lexical(keywords, s.lexical_k, collection, f) for f in searches]
                    )
            with clock.stage("fuse"):
                fused = fuse(dense, lexical, s.fusion, rrf_k=s.rrf_k, dense_weight=s.fusion_dense_weight)
                if named:
                    fused = named.boost(fused, s.named_document_boost)
            pool_size = max(k, s.rerank_candidates) if self.reranker.available else k
            statements = named_statements(question) if s.statement_boost > 0 else frozenset()
            implied = implied_statements(question) if s.implied_statement_boost > 0 else frozenset()
            # re-ordering by what only the chunks tell needs to see past the pool: what moves
            # up takes the place of what moves down
            deeper = (s.max_chunks_per_page > 0 or statements or implied) and not self.reranker.available
            pool = fused[: pool_size * DEEPER_POOL if deeper else pool_size]
            with clock.stage("fetch"):
                stored = {c.chunk.id: c for c in self.index.get([h.chunk_id for h in pool])}
        # a chunk whose document was replaced between search and get is simply gone
        ranked = [Ranked(h, stored[h.chunk_id]) for h in pool if h.chunk_id in stored]
        if statements:
            ranked = boost_statements(ranked, statements, s.statement_boost)
        if implied:
            ranked = boost_statements(ranked, implied, s.implied_statement_boost)
        info, floor_on = self._rerank(question, ranked, clock)
        if s.max_chunks_per_page > 0:
            ranked = spread_pages(ranked, s.max_chunks_per_page)
        ranked = ranked[:pool_size]
        top_dense = dense[0].score if dense else None
        kept, floor = self._floor(ranked, floor_on, top_dense)
        return Retrieval(
            ranked=ranked,
            kept=kept,
            candidates=len(fused),
            reranker=info,
            timings=clock.timings,
            floor_on=floor_on,
            floor=floor,
            top_dense=top_dense,
            dense=dense,
            lexical=lexical,
            fused=fused,
        )

    def _named(self, question: str, collection: str, filters: Filters | None) -> _Named | None:
        """The documents the question names, unless the lever is off or the caller chose documents."""
        if self.settings.named_document_boost <= 0 or (filters and "document_id" in filters):
            return None
        weights = self.index.document_names(collection).match(question)
        if not weights:
            return None
        best = sorted(weights, key=lambda d: (-weights[d], d))[: self.settings.named_documents]
        return _Named(weights, best)

    def _rerank(
        self, question: str, ranked: list[Ranked], clock: _Clock
    ) -> tuple[RerankerInfo, FloorOn | None]:
        """Re-order ``ranked`` in place by the re-ranker's scores, when there is one and it answers."""
        if not (self.reranker.available and ranked):
            return self.reranker_info(), "fused"
        with clock.stage("rerank"):
            try:
                scores = self.reranker.score(question, [r.stored.chunk.text for r in ranked])
                if len(scores) != len(ranked):
                    raise RagError(f"re-ranker returned {len(scores)} scores for {len(ranked)} passages")
            except Exception as exc:  # the re-ranker only improves the order; never fail for it
                reason = exc.message if isinstance(exc, RagError) else f"{exc.__class__.__name__}: {exc}"
                log_event(
                    logger, "rerank_failed", logging.WARNING, reranker=self.reranker.name, reason=reason
                )
                # a floor calibrated on re-rank scores means nothing on fused ones
                return self.reranker_info(used=False, reason=reason), None
            for r, score in zip(ranked, scores, strict=True):
                r.rerank = score
            ranked.sort(key=lambda r: -r.score)  # stable: ties keep the fused order
        return self.reranker_info(used=True), "rerank"

    def _floor(
        self, ranked: list[Ranked], floor_on: FloorOn | None, top_dense: float | None
    ) -> tuple[list[Ranked], float | None]:
        """What survives the floors, and the relevance floor applied (``None``: not applied)."""
        # The question's best cosine is the one signal measured to separate answerable from
        # unanswerable questions without a trained re-ranker (see the README): below it, abstain.
        dense_floor = self.settings.dense_floor
        floor = self.settings.relevance_floor if floor_on is not None else None
        if dense_floor is not None and (top_dense is None or top_dense < dense_floor):
            return [], floor
        if floor is None:
            return list(ranked), None
        return [r for r in ranked if r.score >= floor], floor
