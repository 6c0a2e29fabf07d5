"""The running service without its HTTP: parts, start-up order, readiness, and the reads and
writes a front end needs, as small methods (a route never reaches into the index or the queue).

Start-up opens the index first (taking the data directory's single-writer lock and
recovering from any crash), so a second server on the same directory fails at once.
Models load in a background thread: the process is up immediately, :meth:`Backend.query_pipeline`
and :meth:`Backend.readiness` wait for or report the warm-up, and uploads are accepted
(queued) before it. Job workers start only after warm-up, once jobs a dead process left
behind are re-queued; then the sample documents are queued on a first start.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.intake import Accepted, Admission
from ingest.jobs import QUEUED, RUNNING, Job
from rag.catalog import ACTIVE
from rag.errors import NotFound, NotReady, RagError
from rag.logs import log_event
from rag.settings import Settings
from rag.types import Chunk, Document, PageRecord, chunk_id
from service.runtime import Runtime
from service.samples import SampleTarget, seed_samples

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from rag.answering import QueryPipeline

log = logging.getLogger(__name__)

CHUNK_BATCH = 64
"""Chunks read from the index at a time when walking a document."""

JobFinished = Callable[[Job, str, float], None]
"""Told of every finished attempt: the job, its new state (``queued`` when it will be retried), seconds."""


class Backend:
    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        sample_targets: Callable[[], list[SampleTarget]] | None = None,
        on_samples_queued: Callable[[list[Job]], None] | None = None,
        on_job_finished: JobFinished | None = None,
    ) -> None:
        """``registry``: where the LLM gateway's metrics go. ``sample_targets``: the collections
        that get the sample documents on a first start (asked once, after warm-up), and
        ``on_samples_queued`` hears when some were queued."""
        self.settings = settings
        self.runtime = Runtime(settings, writer=True, registry=registry)
        self.runtime.jobs.on_finished = on_job_finished
        self.ready = threading.Event()
        self.warm_error: RagError | None = None
        self.started_at = time.time()
        self.seeded: list[Job] = []
        self._sample_targets = sample_targets
        self._on_samples_queued = on_samples_queued
        self._warm_thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------

    def start(self) -> None:
        """Open the index and begin warming up; a second call does nothing."""
        if self._warm_thread is not None:
            return
        self.runtime.index  # noqa: B018 - opens the index: lock, recovery
        self._clean_uploads()
        self._warm_thread = threading.Thread(target=self._warm, name="warm-up", daemon=True)
        self._warm_thread.start()

    async def close_gateway(self) -> None:
        """The gateway's HTTP clients belong to the serving event loop: close them on it."""
        if not self.runtime.loaded("gateway"):
            return
        try:
            await self.runtime.gateway.aclose()
        except Exception:  # shutting down: nothing useful to do
            log.debug("closing the gateway failed", exc_info=True)

    def stop(self) -> None:
        self.runtime.jobs.stop()
        self.runtime.close()

    def _warm(self) -> None:
        """Ingestion parts first (then the workers start), query parts second; either may fail alone."""
        started = time.perf_counter()
        runtime = self.runtime

        def warm_ingestion() -> None:
            if self.settings.run_jobs:  # a replica whose jobs `rag worker`s run parses nothing
                runtime.ingestion.parsers.warm()
            runtime.embedder.embed_query("warm up")

        # The BM25 segments (Python, GIL-bound) load first, alone: beside the model's imports the
        # two slowed each other to more than their sum. Then Chroma loads each HNSW index with
        # the GIL released while the model loads (README, "Beyond one process": 1M chunks)
        self._warm_index(runtime.index.warm_lexical)
        warming = threading.Thread(
            target=self._warm_index, args=(runtime.index.warm_vectors,), name="warm-vectors", daemon=True
        )
        warming.start()
        if self._load("ingestion", warm_ingestion):
            if self.settings.run_jobs:  # else `rag worker` processes run them
                runtime.jobs.start()
            self._seed_samples()
        query_ok = self._load("query", lambda: runtime.query)
        warming.join()
        if query_ok and self._jobs_ok():
            self.ready.set()
            log_event(log, "service ready", seconds=round(time.perf_counter() - started, 2))

    @staticmethod
    def _warm_index(warm: Callable[[], object]) -> None:
        """Loading the indexes early only saves the first questions time: a failure (a Chroma
        server still starting) is logged, and those questions load what they need or answer 503."""
        try:
            warm()
        except Exception as exc:
            reason = exc.message if isinstance(exc, RagError) else f"{exc.__class__.__name__}: {exc}"
            log_event(log, "index not warmed", logging.WARNING, reason=reason)

    def _jobs_ok(self) -> bool:
        return self.runtime.jobs.alive or not self.settings.run_jobs

    def _seed_samples(self) -> None:
        if self.settings.samples_dir is None or self._sample_targets is None:
            return
        try:
            self.seeded = seed_samples(self.settings, self.runtime, self._sample_targets())
        except RagError as exc:
            log_event(log, "samples not loaded", logging.WARNING, code=exc.code, reason=exc.message)
            return
        if self.seeded and self._on_samples_queued is not None:
            self._on_samples_queued(self.seeded)

    def _load(self, what: str, load: Callable[[], object]) -> bool:
        try:
            load()
            return True
        except RagError as exc:
            self.warm_error = exc
        except Exception as exc:  # report it on readiness instead of dying silently
            log.exception("loading the %s parts failed", what)
            self.warm_error = RagError(f"loading the {what} parts failed: {exc.__class__.__name__}")
        log_event(
            log,
            "service not ready",
            logging.ERROR,
            part=what,
            code=self.warm_error.code,
            reason=self.warm_error.message,
        )
        return False

    def _clean_uploads(self) -> None:
        """Files of jobs that no longer need them, and partial uploads a crash left behind."""
        directory = self.settings.uploads_dir
        if not directory.exists():
            return
        store = self.runtime.jobs.store
        keep = {
            Path(j.path).name
            for state in (QUEUED, RUNNING)
            for j in store.recent(state=state, limit=1_000_000)
        }
        for path in directory.iterdir():
            if path.is_file() and path.name not in keep:
                path.unlink(missing_ok=True)

    # --- querying ---------------------------------------------------------------

    async def query_pipeline(self) -> QueryPipeline:
        """The query pipeline once warm-up is done; 503 ``not_ready`` if it does not finish in time."""
        deadline = time.monotonic() + min(self.settings.query_deadline_s, 30.0)
        while not self.ready.is_set():
            if self.warm_error is not None:
                raise self.warm_error
            if time.monotonic() > deadline:
                raise NotReady("The service is still loading its models", retry_after=5)
            await asyncio.sleep(0.1)
        return self.runtime.query

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """What a load balancer needs to know, part by part; reading it never loads anything."""
        runtime = self.runtime
        checks: dict[str, Any] = {}
        try:
            index = runtime.index
            checks["index"] = {
                "ok": True,
                "backend": "chroma-http" if self.settings.chroma_url else "chroma-embedded",
                "writable": index.writable,
            }
        except Exception as exc:
            checks["index"] = {"ok": False, "reason": exc.__class__.__name__}
        checks["embedder"] = {
            "ok": runtime.loaded("embedder"),
            "model": self.settings.embedding_model,
            "backend": self.settings.embedding_backend,
        }
        if runtime.loaded("reranker"):
            reranker = runtime.reranker
            checks["reranker"] = {
                "ok": True,
                "name": reranker.name,
                "available": reranker.available,
                "reason": reranker.reason,
            }
        else:
            checks["reranker"] = {"ok": False, "reason": "not loaded yet"}
        if runtime.loaded("gateway"):
            lanes = runtime.gateway.status()
            checks["providers"] = {"ok": any(lane.get("available") for lane in lanes), "chain": lanes}
        else:
            checks["providers"] = {"ok": False, "reason": "not loaded yet"}
        counts = self.job_counts()
        checks["jobs"] = {
            "ok": self._jobs_ok(),
            "workers": self.settings.workers if self.settings.run_jobs else 0,
            **counts,
        }
        if self.warm_error is not None:
            checks["warmup"] = {"ok": False, "code": self.warm_error.code, "reason": self.warm_error.message}
        else:
            checks["warmup"] = {"ok": self.ready.is_set()}
        ready = all(c.get("ok") for c in checks.values())
        return ready, checks

    # --- documents --------------------------------------------------------------

    def document(self, doc_id: str) -> Document | None:
        """The indexed (active) document with this id."""
        doc = self.runtime.index.catalog.get(doc_id)
        return doc if doc is not None and doc.state == ACTIVE else None

    def documents(self, collection: str) -> list[Document]:
        """The indexed documents of one (internal) collection."""
        return self.runtime.index.catalog.documents(collection)

    def page_chunks(self, doc: Document, page: int) -> list[Chunk]:
        """The document's chunks from the one before ``page`` to the one after, in order.

        Chunks run in page order (first and last page never decrease with the ordinal), so a
        binary search finds the first one without reading the whole document."""
        index = self.runtime.index

        def read(ordinals: Sequence[int]) -> list[Chunk]:
            return [s.chunk for s in index.get([chunk_id(doc.id, n) for n in ordinals])]

        with index.consistent_read():
            lo, hi = 0, doc.chunks
            while lo < hi:
                mid = (lo + hi) // 2
                probe = read([mid])
                if not probe:  # deleted or replaced while we read
                    raise NotFound(f"document {doc.id[:64]} not found")
                if probe[0].page_end < page - 1:
                    lo = mid + 1
                else:
                    hi = mid
            found: list[Chunk] = []
            for first in range(lo, doc.chunks, CHUNK_BATCH):
                for chunk in read(range(first, min(first + CHUNK_BATCH, doc.chunks))):
                    if chunk.page_start > page + 1:
                        return found
                    found.append(chunk)
        return found

    def page(self, doc_id: str, page_no: int) -> PageRecord | None:
        """A page's stored text and word boxes (``None``: no such page, or none were kept)."""
        return self.runtime.index.page(doc_id, page_no)

    def original(self, doc_id: str) -> Path | None:
        """The document's original file, if it is kept."""
        return self.runtime.index.originals.get(doc_id)

    def chunk(self, chunk_id: str) -> Chunk | None:
        found = self.runtime.index.get([chunk_id])
        return found[0].chunk if found else None

    def collections(self) -> list[str]:
        """Every (internal) collection that has documents."""
        return list(self.runtime.index.catalog.collections())

    def delete_document(self, doc_id: str) -> None:
        """Remove an indexed document from both indexes; ``NotFound`` if there is none."""
        self.runtime.index.delete(doc_id)

    def index_stats(self) -> dict[str, Any]:
        return self.runtime.index.stats()

    # --- intake and jobs --------------------------------------------------------

    def cancel_job(self, job_id: str) -> bool:
        """Cancel a queued or running ingestion job (see ``ingest.jobs.JobQueue.cancel``)."""
        return self.runtime.jobs.cancel(job_id)

    def cancel_job_and_wait(self, job_id: str, timeout_s: float) -> Job | None:
        """Cancel a job and wait for it to end (``ingest.jobs.JobQueue.cancel_and_wait``)."""
        return self.runtime.jobs.cancel_and_wait(job_id, timeout_s)

    def check_capacity(self, tenant: str, incoming: int = 1) -> None:
        """``QueueFull`` before an upload is even read, when the tenant's queue has no room."""
        self.runtime.jobs.check_capacity(tenant, incoming)

    def admit(
        self,
        path: Path,
        *,
        tenant: str,
        collection: str,
        name: str,
        metadata: dict[str, Any],
        sha256: str | None = None,
    ) -> Admission:
        """Intake's checks of one received file (see ``ingest.intake.admit``)."""
        return self.runtime.intake.admit(
            path, collection=collection, name=name, metadata=metadata, tenant=tenant, sha256=sha256
        )

    def enqueue(self, admissions: Sequence[Admission]) -> list[Accepted]:
        """Deduplicate and queue admitted files, all or none (see ``ingest.intake.Intake.enqueue``)."""
        return self.runtime.intake.enqueue(admissions)

    def job(self, job_id: str) -> Job | None:
        return self.runtime.jobs.store.get(job_id)

    def latest_job(self, doc_id: str) -> Job | None:
        """The most recent job of a document id, whatever its state."""
        return self.runtime.jobs.store.latest_for_document(doc_id)

    def pending_jobs(self, collection: str) -> list[Job]:
        """Queued and running jobs of one (internal) collection, oldest first."""
        return self.runtime.jobs.store.pending(collection)

    def recent_jobs(
        self, *, tenant: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[Job]:
        """Newest first; ``None`` filters nothing."""
        return self.runtime.jobs.store.recent(tenant=tenant, state=state, limit=limit)

    def job_counts(self) -> dict[str, int]:
        return self.runtime.jobs.store.counts()

    def cancel_queued(self, doc_id: str) -> list[Job]:
        """Fail a document's queued jobs (it was deleted) and remove their files; returns them."""
        cancelled = self.runtime.jobs.store.cancel_queued(doc_id)
        for job in cancelled:
            self.runtime.jobs.discard_upload(job.path)
        return cancelled


__all__ = ["Backend", "JobFinished"]
