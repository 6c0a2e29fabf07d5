"""From a file on disk to an indexed document, in one visible, crash-safe job.

Loading and chunking run in a producer thread while the caller's thread embeds, so
PDF parsing and OCR hide behind the model, which is the floor of ingestion speed.
Nothing is written until every chunk is embedded; the index then switches versions
in one step, so a failure at any point leaves what was stored untouched.
"""

from __future__ import annotations

import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ingest.chunking import Chunker
from ingest.loaders import load_document
from rag.embedder import Embedder
from rag.errors import InvalidRequest, NoTextFound, TooLarge
from rag.index.hybrid import HybridIndex
from rag.settings import Settings
from rag.types import Chunk, Document, Page

_READ_BLOCK = 1 << 20
_EMBED_BATCH = 64


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


ProgressCallback = Callable[[IngestProgress], None]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(_READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def document_id(collection: str, content_sha256: str) -> str:
    """The content hash, scoped to its collection so tenants never share a document row."""
    return hashlib.sha256(f"{collection}\0{content_sha256}".encode()).hexdigest()[:32]


def validate_collection(name: str) -> str:
    if not name or len(name) > 128 or any(ch in name for ch in "\0/\\") or name != name.strip():
        raise InvalidRequest(f"invalid collection name {name!r}")
    return name


class IngestionPipeline:
    def __init__(self, settings: Settings, index: HybridIndex, embedder: Embedder, chunker: Chunker) -> None:
        self.settings = settings
        self.index = index
        self.embedder = embedder
        self.chunker = chunker

    def identify(self, path: Path, collection: str | None = None) -> tuple[str, str]:
        """``(document id, content sha256)`` of a file, as the index will know it."""
        sha = file_sha256(path)
        return document_id(validate_collection(collection or self.settings.default_collection), sha), sha

    def ingest_file(
        self,
        path: Path,
        *,
        name: str | None = None,
        collection: str | None = None,
        metadata: dict[str, Any] | None = None,
        progress: ProgressCallback | None = None,
    ) -> IngestResult:
        started = time.perf_counter()
        collection = validate_collection(collection or self.settings.default_collection)
        size = path.stat().st_size
        if size > self.settings.max_upload_bytes:
            raise TooLarge(f"{path.name} is {size} bytes; the limit is {self.settings.max_upload_mb} MB")
        doc_id, sha = self.identify(path, collection)
        existing = self.index.catalog.get(doc_id)
        if existing is not None and existing.state == "active":
            return IngestResult(existing, True, existing.pages, existing.ocr_pages, existing.chunks, 0.0)

        loaded = load_document(path, self.settings)
        document = Document(
            id=doc_id,
            name=name or path.name,
            collection=collection,
            content_sha256=sha,
            kind=loaded.kind,
            size_bytes=size,
            created_at=time.time(),
            metadata={**({"title": loaded.title} if loaded.title else {}), **(metadata or {})},
        )
        state = IngestProgress(pages_total=loaded.page_count, stage="reading")
        report = progress or (lambda _p: None)
        report(state)

        def counted_pages() -> Iterator[Page]:
            for page in loaded.pages:
                state.pages_read += 1
                if page.source == "ocr":
                    state.ocr_pages += 1
                report(state)
                yield page

        timings = {"embed": 0.0}
        chunks: list[Chunk] = []
        vectors: list[np.ndarray] = []
        for batch in _produce_batches(self.chunker.chunk(doc_id, counted_pages()), _EMBED_BATCH):
            state.stage = "embedding"
            t0 = time.perf_counter()
            vectors.append(self.embedder.embed([c.text for c in batch]))
            timings["embed"] += time.perf_counter() - t0
            chunks.extend(batch)
            state.chunks_embedded = len(chunks)
            report(state)
        if not chunks:
            raise NoTextFound(f"no text could be read from {document.name}")
        document.pages, document.ocr_pages = state.pages_read, state.ocr_pages
        state.stage = "indexing"
        report(state)
        t0 = time.perf_counter()
        written = self.index.write(document, chunks, np.vstack(vectors))
        timings["index"] = time.perf_counter() - t0
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


_DONE = object()


def _produce_batches(chunks: Iterator[Chunk], size: int) -> Iterator[list[Chunk]]:
    """Run the chunk iterator in a thread, a bounded number of batches ahead of the consumer."""
    out: queue.Queue[object] = queue.Queue(maxsize=4)
    stop = threading.Event()

    def produce() -> None:
        batch: list[Chunk] = []
        try:
            for chunk in chunks:
                if stop.is_set():
                    return
                batch.append(chunk)
                if len(batch) >= size:
                    out.put(batch)
                    batch = []
            if batch:
                out.put(batch)
            out.put(_DONE)
        except BaseException as exc:
            out.put(exc)

    worker = threading.Thread(target=produce, name="ingest-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = out.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        while worker.is_alive():
            try:
                out.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)
