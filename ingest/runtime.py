"""The composition root: every part of the embedded service built once from ``Settings``.

It lives in ``ingest`` because it wires ingestion and querying together, and the
dependency rule is ``api -> ingest -> rag`` (eval may use it too). Parts are built
lazily so a command only pays for what it uses (``rag documents`` loads no model).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from rag.embedder import Embedder, get_embedder
from rag.index.hybrid import HybridIndex, open_index
from rag.settings import Settings

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.pipeline import IngestionPipeline
    from rag.answering import QueryPipeline
    from rag.rerank.base import Reranker


class Runtime:
    def __init__(self, settings: Settings, *, writer: bool = True, registry: Any = None) -> None:
        """``registry`` is the Prometheus registry the gateway reports to (the app's own, in tests)."""
        self.settings = settings
        self.writer = writer
        self.registry = registry
        # Writes only; tesseract's OpenMP threads fight each other on small machines.
        os.environ.setdefault("OMP_THREAD_LIMIT", str(settings.ocr_thread_limit))

    @cached_property
    def index(self) -> HybridIndex:
        return open_index(self.settings, writer=self.writer)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return get_embedder(s.embedding_model, s.embedding_device, s.embedding_batch_size)

    @cached_property
    def chunker(self) -> Chunker:
        from ingest.chunking import Chunker

        return Chunker.from_settings(self.settings, self.embedder)

    @cached_property
    def ingestion(self) -> IngestionPipeline:
        from ingest.pipeline import IngestionPipeline

        return IngestionPipeline(self.settings, self.index, self.embedder, self.chunker)

    @cached_property
    def reranker(self) -> Reranker:
        from rag.rerank.factory import build_reranker

        return build_reranker(self.settings)

    @cached_property
    def gateway(self) -> Any:
        """The LLM gateway (cache, providers in fallback order, breakers, budget)."""
        from rag.llm.gateway import Gateway

        if self.registry is not None:
            return Gateway.from_settings(self.settings, registry=self.registry)
        return Gateway.from_settings(self.settings)

    @cached_property
    def query(self) -> QueryPipeline:
        from rag.answering import QueryPipeline
        from rag.index.base import Index

        # HybridIndex.write returns whether it wrote; the Index protocol says None
        return QueryPipeline(
            self.settings, cast(Index, self.index), self.embedder, self.reranker, self.gateway
        )

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
