"""From an admitted file to an indexed document, in one visible, crash-safe job.

A file reaches the pipeline through intake (``ingest.intake``), which checked, hashed,
sniffed, identified and deduplicated it once; :meth:`IngestionPipeline.ingest` takes that
:class:`~ingest.intake.Admission`, :meth:`~IngestionPipeline.ingest_file` runs intake then
ingests (``rag ingest``, evaluation), and :meth:`~IngestionPipeline.run_job` is the job
queue's handler.

Loading and chunking run in a producer thread while the caller's thread embeds, and a
writer thread stores each embedded batch while the next is embedded, so PDF parsing, OCR and
the vector store's writes hide behind the model, which is the floor of ingestion speed. The
document becomes visible only when every chunk is stored: the index then switches versions in
one step (``rag.index.base.DocumentWrite``), so a failure at any point leaves what was stored
untouched.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from opentelemetry import trace
from opentelemetry.context import Context

from ingest.chunking import Chunker
from ingest.intake import Admission, admit, check_size, document_id, indexed_copy, validate_collection
from ingest.isolation import ParserPool
from ingest.jobs import Job
from ingest.loaders import LoadedDocument
from ingest.pages import recorded
from ingest.profile import DocumentProfile, read_profile
from rag.embedder import Embedder
from rag.errors import CorruptDocument, InvalidRequest, NoTextFound, NotFound, ResourceLimit
from rag.index.base import DocumentWrite, IndexWriter
from rag.settings import Settings
from rag.tracing import tracer
from rag.types import Chunk, Document, Page, PageRecord

_EMBED_BATCH = 64
"""The most chunks one ``embed`` call gets; it takes fewer when the reader has fewer ready."""


@dataclass
class IngestProgress:
    """What a job shows while it runs."""

    pages_total: int = 0
    pages_read: int = 0
    ocr_pages: int = 0
    chunks_embedded: int = 0
    stage: str = "queued"


@dataclass
class IngestResult:
    document: Document
    duplicate: bool
    pages: int
    ocr_pages: int
    chunks: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["document"] = asdict(self.document)
        return out

    @classmethod
    def already_indexed(cls, document: Document) -> IngestResult:
        return cls(document, True, document.pages, document.ocr_pages, document.chunks, 0.0)

    def job_result(self) -> dict[str, Any]:
        """What a finished job records (``GET /v1/jobs/{id}`` shows it as ``result``)."""
        return {
            "document_id": self.document.id,
            "duplicate": self.duplicate,
            "pages": self.pages,
            "ocr_pages": self.ocr_pages,
            "chunks": self.chunks,
            "seconds": round(self.seconds, 3),
            "timings": self.timings,
        }


ProgressCallback = Callable[[IngestProgress], None]


class IngestionPipeline:
    def __init__(self, settings: Settings, index: IndexWriter, embedder: Embedder, chunker: Chunker) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.chunker = chunker
        self.parsers = ParserPool(settings)

    def close(self) -> None:
        """Stop the idle parser processes."""
        self.parsers.close()

    def ingest_file(
        self,
        path: Path,
        *,
        name: str | None = None,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        """Intake (check, hash, sniff, identify, deduplicate) and ingestion of a file, in this thread."""
        started = time.perf_counter()
        admission = admit(path, self.settings, collection=collection, name=name, metadata=metadata)
        existing = indexed_copy(self.index.catalog, admission)
        if existing is not None:
            return IngestResult.already_indexed(existing)
        return self.ingest(admission, progress=progress, started=started)

    def run_job(self, job: Job, progress: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """The job queue's handler: ingest the job's file with what intake recorded for it."""
        path = Path(job.path)
        if not path.exists():
            raise NotFound("the uploaded file is no longer on disk")
        admission = Admission.from_job(job)
        if admission is None:  # queued by a version that did not record intake's facts
            admission = admit(
                path,
                self.settings,
                collection=job.collection,
                name=job.name,
                metadata=job.metadata,
                tenant=job.tenant,
            )
        if job.attempts > 1:  # the attempt that died may have written the document already
            existing = indexed_copy(self.index.catalog, admission)
            if existing is not None:
                return IngestResult.already_indexed(existing).job_result()
        result = self.ingest(admission, progress=lambda p: progress(asdict(p)))
        return result.job_result()

    def ingest(
        self,
        admission: Admission,
        *,
        progress: ProgressCallback | None = None,
        started: float | None = None,
    ) -> IngestResult:
        """Read, chunk, embed and index an admitted file; the store skips bytes it already holds.

        Intake's facts are taken as given where checking them would mean doing intake's work
        again (hashing the file, sniffing it), and re-checked where that is cheap and matters
        for safety: the collection name is validated, the document id must be the one the
        collection and content hash derive (an id is never chosen by a caller), the file must
        still be within ``max_upload_bytes`` and exactly as long as when it was admitted (a file
        changed since is refused), and the loader of ``kind`` validates every byte it reads.
        """
        started = time.perf_counter() if started is None else started
        collection = validate_collection(admission.collection)
        if admission.document_id != document_id(collection, admission.content_sha256):
            raise InvalidRequest("the document id does not match the collection and content hash")
        path = admission.path
        size = check_size(path, self.settings)
        if size != admission.size_bytes:
            raise CorruptDocument(f"{admission.name} changed after it was accepted")

        state = IngestProgress(stage="reading")
        report = progress or (lambda _p: None)
        with tracer.start_as_current_span(
            "ingest", attributes={"rag.document_id": admission.document_id, "rag.kind": admission.kind}
        ) as span:
            loaded = self.parsers.load(path, admission.kind, heartbeat=lambda: report(state))
            try:
                document = _new_document(admission, collection, loaded)
                writing = self.index.begin(document, original=path)
            except BaseException:
                loaded.release()
                raise
            try:
                try:
                    chunks, pages, timings = self._read_and_embed(document, loaded, state, report, writing)
                finally:
                    loaded.release()
                state.stage = "indexing"
                report(state)
                t0 = time.perf_counter()
                with tracer.start_as_current_span("write"):
                    written = writing.commit(pages)
                timings["index"] += time.perf_counter() - t0
            except BaseException:
                writing.abort()
                raise
            span.set_attributes(
                {"rag.pages": document.pages, "rag.chunks": len(chunks), "rag.duplicate": not written}
            )
        state.stage = "done"
        report(state)
        return IngestResult(
            document=document,
            duplicate=not written,
            pages=document.pages,
            ocr_pages=document.ocr_pages,
            chunks=len(chunks),
            seconds=time.perf_counter() - started,
            timings={k: round(v, 4) for k, v in timings.items()},
        )

    def _read_and_embed(
        self,
        document: Document,
        loaded: LoadedDocument,
        state: IngestProgress,
        report: ProgressCallback,
        writing: DocumentWrite,
    ) -> tuple[list[Chunk], list[PageRecord], dict[str, float]]:
        """Pages to stored chunks: reading and chunking in a thread, embedding in this one, and
        storing in another (``timings["index"]``: the wait for the last batches to be stored)."""
        state.pages_total = loaded.page_count
        report(state)

        job = trace.get_current_span().get_span_context()
        parent = trace.set_span_in_context(trace.NonRecordingSpan(job))  # for the reader thread

        def counted_pages() -> Iterator[Page]:
            # spans overlap: pages stream from the parser while chunks are cut and embedded
            reading = tracer.start_span("read", context=parent)
            asked = time.time_ns()
            try:
                for page in loaded.pages:
                    state.pages_read += 1
                    if page.source == "ocr":  # the time this page took to come back from OCR
                        state.ocr_pages += 1
                        tracer.start_span(
                            "ocr", context=parent, start_time=asked, attributes={"rag.page": state.pages_read}
                        ).end()
                    report(state)
                    yield page
                    asked = time.time_ns()
            finally:
                reading.set_attribute("rag.pages", state.pages_read)
                reading.end()

        profiles: list[DocumentProfile] = []
        records: list[PageRecord] = []

        def profiled_chunks() -> Iterator[Chunk]:
            # in the reader thread: the first pages make the profile that heads every chunk's context
            with tracer.start_span("chunk", context=parent):
                profile, pages = read_profile(counted_pages(), title=document.metadata.get("title"))
                profiles.append(profile)
                yield from self.chunker.chunk(
                    document.id, recorded(pages, tables=self.chunker.tables, into=records), profile
                )

        timings = {"embed": 0.0, "index": 0.0}
        chunks: list[Chunk] = []
        batches = _produce_batches(
            profiled_chunks(),
            _EMBED_BATCH,
            at_least=self.settings.embedding_batch_size,
            on_stop=loaded.release,
        )
        with _BackgroundWriter(writing, parent) as store:
            for batch in batches:
                state.stage = "embedding"
                t0 = time.perf_counter()
                with tracer.start_as_current_span("embed", attributes={"rag.chunks": len(batch)}):
                    vectors = self.embedder.embed([c.embedded_text for c in batch])
                timings["embed"] += time.perf_counter() - t0
                chunks.extend(batch)
                if len(chunks) > self.settings.max_chunks_per_document:
                    raise ResourceLimit(
                        f"the document makes more than {self.settings.max_chunks_per_document:,} chunks"
                        " (RAG_MAX_CHUNKS_PER_DOCUMENT)",
                        limit="chunks",
                    )
                store.put(batch, vectors)
                state.chunks_embedded = len(chunks)
                report(state)
            if not chunks:
                raise NoTextFound(f"no text could be read from {document.name}")
            t0 = time.perf_counter()
            store.finish()
            timings["index"] = time.perf_counter() - t0
        document.pages, document.ocr_pages = state.pages_read, state.ocr_pages
        if profiles:  # stored for the query side; the caller's own metadata wins
            document.metadata = {**profiles[0].to_metadata(), **document.metadata}
        return chunks, records, timings


def _new_document(admission: Admission, collection: str, loaded: LoadedDocument) -> Document:
    return Document(
        id=admission.document_id,
        name=admission.name,
        collection=collection,
        content_sha256=admission.content_sha256,
        kind=loaded.kind,
        size_bytes=admission.size_bytes,
        created_at=time.time(),
        metadata={**({"title": loaded.title} if loaded.title else {}), **admission.metadata},
    )


class _BackgroundWriter:
    """Stores embedded batches in a thread while the caller embeds the next ones.

    The vector store's writes (Chroma's ``add`` holds the GIL while it runs) overlap the model's
    forward passes, which release it; only the last batch's write is left after the last
    forward pass. A failed write is raised at the next ``put`` or at ``finish``."""

    def __init__(self, writing: DocumentWrite, parent: Context) -> None:
        self._writing = writing
        self._parent = parent
        self._queue: queue.Queue[tuple[list[Chunk], np.ndarray] | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._abandoned = False
        """The ingestion failed: batches still queued are not stored (the write is aborted)."""
        self._thread = threading.Thread(target=self._run, name="ingest-writer", daemon=True)

    def __enter__(self) -> _BackgroundWriter:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        self._abandoned = exc_type is not None
        self._stop()  # after an error: the caller aborts the write once this thread is done

    def _run(self) -> None:
        span = tracer.start_span("store", context=self._parent)
        try:
            while (item := self._queue.get()) is not None:
                if self._error is None and not self._abandoned:
                    try:
                        self._writing.add(*item)
                    except BaseException as exc:
                        self._error = exc
        finally:
            span.end()

    def put(self, chunks: list[Chunk], vectors: np.ndarray) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put((chunks, vectors))

    def finish(self) -> None:
        """Wait for every batch to be stored."""
        self._stop()
        if self._error is not None:
            raise self._error

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


_DONE = object()


def _produce_batches(
    chunks: Iterator[Chunk], size: int, *, at_least: int = 1, on_stop: Callable[[], None]
) -> Iterator[list[Chunk]]:
    """Run the chunk iterator in a thread, a bounded number of chunks ahead of the consumer, and
    hand over what is ready (``at_least`` chunks, at most ``size``; the first batch as soon as
    there is one chunk) rather than waiting for a full batch: the embedder starts on the first
    chunk instead of idling while the reader cuts 64 (about a fifth of a second on a filing).
    ``on_stop`` (at the end, or when the consumer gives up) unblocks a reader waiting on a parser."""
    out: queue.Queue[object] = queue.Queue(maxsize=4 * size)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                out.put(chunk)
            out.put(_DONE)
        except BaseException as exc:
            out.put(exc)

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    worker.start()
    try:
        done = False
        need = 1
        while not done:
            batch: list[Chunk] = []
            while len(batch) < size:
                try:
                    item = out.get(block=len(batch) < need)
                except queue.Empty:
                    break
                if item is _DONE:
                    done = True
                    break
                if isinstance(item, BaseException):
                    raise item
                batch.append(item)  # type: ignore[arg-type]
            if batch:
                yield batch
                need = at_least
    finally:
        stop.set()
        on_stop()
        while worker.is_alive():
            try:
                out.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
