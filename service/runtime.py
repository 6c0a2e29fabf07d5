"""The composition root: every part of the embedded service built once from ``Settings``.

It is the ``service`` layer, above ``ingest`` and ``rag`` and below the front ends (``api``,
``cli``, ``eval``): it wires ingestion and querying together and is neither. Parts are built
lazily so a command only pays for what it uses (``rag documents`` loads no model), and it
changes nothing process-wide: configuration reaches each part as arguments (tesseract's
thread limit, for one, goes to the tesseract child process only; see ``ingest.loaders.ocr``).
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rag.settings import Settings

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ingest.chunking import Chunker
    from ingest.intake import Intake
    from ingest.jobs import Job, JobQueue
    from ingest.pipeline import IngestionPipeline
    from rag.answering import QueryPipeline
    from rag.conversations import ConversationStore
    from rag.embedder import Embedder
    from rag.followups import FollowupRewriter
    from rag.index.store import DocumentStore
    from rag.llm.gateway import Gateway
    from rag.rerank.base import Reranker
    from service.embedding import CollectionEmbedders
    from service.reindex import Progress, ReindexReport


class Runtime:
    """The parts, each built on first use; ``close`` releases what was opened."""

    def __init__(
        self,
        settings: Settings,
        *,
        writer: bool = True,
        registry: CollectorRegistry | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        """``writer`` takes the data directory's single-writer lock when the index opens;
        ``registry`` is the Prometheus registry the gateway reports to (the app's own, in tests);
        ``embedder`` stands in for the configured model (eval's cache of vectors wraps it)."""
        self.settings = settings
        self.writer = writer
        self.registry = registry
        if embedder is not None:
            self.__dict__["embedder"] = embedder  # what the ``embedder`` property would build
        self._pipelines: dict[str, IngestionPipeline] = {}
        self._pipelines_lock = threading.Lock()

    def loaded(self, part: str) -> bool:
        """Whether ``part`` (a property name: ``"index"``, ``"gateway"``...) is built; builds nothing."""
        return part in self.__dict__

    # --- storage ----------------------------------------------------------------

    @cached_property
    def index(self) -> DocumentStore:
        from rag.index.store import open_store

        return open_store(self.settings, writer=self.writer)

    # --- ingestion --------------------------------------------------------------

    @cached_property
    def embedder(self) -> Embedder:
        """The configured model and backend (``RAG_EMBEDDING_MODEL``, ``_BACKEND``): new collections'."""
        return self.load_embedder(self.settings.embedding_model, self.settings.embedding_backend)

    def load_embedder(self, model: str, backend: str | None = None) -> Embedder:
        """An embedder for ``model`` on ``backend`` (default: the configured one), loaded once per
        process; a split bundle is joined, and an ONNX export made, under ``models_dir``."""
        from rag.embedder import get_embedder, limit_threads

        s = self.settings
        limit_threads(s.embedding_threads)
        return get_embedder(
            model,
            s.embedding_device,
            s.embedding_batch_size,
            s.models_dir,
            backend or s.embedding_backend,
            s.embedding_threads,
        )

    @cached_property
    def embedders(self) -> CollectionEmbedders:
        """Each collection's model: what queries embed with (``service.embedding``)."""
        from rag.models import canonical_model_name
        from service.embedding import CollectionEmbedders

        configured = (canonical_model_name(self.settings.embedding_model), self.settings.embedding_backend)

        def load(model: str, backend: str) -> Embedder:
            same = (canonical_model_name(model), backend) == configured
            return self.embedder if same else self.load_embedder(model, backend)

        return CollectionEmbedders(self.settings, lambda: self.index, load)

    @cached_property
    def chunker(self) -> Chunker:
        from ingest.chunking import Chunker

        return Chunker.from_settings(self.settings, self.embedder)

    @cached_property
    def ingestion(self) -> IngestionPipeline:
        from ingest.pipeline import IngestionPipeline

        return IngestionPipeline(self.settings, self.index, self.embedder, self.chunker)

    @cached_property
    def jobs(self) -> JobQueue:
        """The durable ingestion queue; its workers (started by whoever serves) run ``ingestion``."""
        from ingest.jobs import JobQueue

        return JobQueue(self.settings, self._run_job)

    def ingestion_for(self, collection: str | None) -> IngestionPipeline:
        """The pipeline that writes into ``collection``, with the collection's own model."""
        from ingest.pipeline import IngestionPipeline

        embedder = self.embedders.for_collection(collection)
        if embedder is self.embedder:
            return self.ingestion
        with self._pipelines_lock:
            pipeline = self._pipelines.get(embedder.spec.describe())
            if pipeline is None:
                from ingest.chunking import Chunker

                chunker = Chunker.from_settings(self.settings, embedder)
                writer = self.index.writer_for(embedder.spec)
                pipeline = IngestionPipeline(self.settings, writer, embedder, chunker)
                self._pipelines[embedder.spec.describe()] = pipeline
        return pipeline

    def _run_job(self, job: Job, progress: Any) -> dict[str, Any]:
        # resolved per job: the pipeline (and its model) is built by the warm-up, not by the queue
        return self.ingestion_for(job.collection).run_job(job, progress)

    def reindex(
        self,
        collection: str,
        model: str,
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> ReindexReport:
        """Re-embed ``collection`` with ``model`` and switch it over (``service.reindex``)."""
        from service.reindex import reindex

        return reindex(self.index, collection, self.load_embedder(model), force=force, progress=progress)

    @cached_property
    def intake(self) -> Intake:
        """Where files enter a collection: checked, identified, deduplicated, queued."""
        from ingest.intake import Intake

        return Intake(self.settings, self.index.catalog, self.jobs)

    # --- querying ---------------------------------------------------------------

    @cached_property
    def reranker(self) -> Reranker:
        from rag.rerank.factory import build_reranker

        return build_reranker(self.settings)

    @cached_property
    def gateway(self) -> Gateway:
        """The LLM gateway (cache, providers in fallback order, breakers, budget)."""
        from rag.llm.gateway import Gateway

        if self.registry is not None:
            return Gateway.from_settings(self.settings, registry=self.registry)
        return Gateway.from_settings(self.settings)

    @cached_property
    def query(self) -> QueryPipeline:
        from rag.answering import QueryPipeline

        return QueryPipeline(self.settings, self.index, self.embedders, self.reranker, self.gateway)

    @cached_property
    def rewriter(self) -> FollowupRewriter:
        """Makes follow-ups standalone: the LLM when one is configured, else the offline method."""
        from rag.followups import make_rewriter

        return make_rewriter(self.settings, self.gateway)

    @cached_property
    def conversations(self) -> ConversationStore:
        from rag.conversations import ConversationStore
        from rag.db import database

        return ConversationStore(database(self.settings, "conversations"))

    # --- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        """Stop idle parser processes, close the job store and the index (stop the queue's workers first)."""
        for pipeline in [*([self.ingestion] if self.loaded("ingestion") else []), *self._pipelines.values()]:
            pipeline.close()
        if self.loaded("jobs"):
            self.jobs.store.close()
        if self.loaded("conversations"):
            self.conversations.close()
        if self.loaded("index"):
            self.index.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Runtime"]
