"""The document store: catalog, vector store and lexical indexes kept in step, with locks and recovery.

It does no ranking of its own: ``dense`` and ``lexical`` each ask one side, and fusing them is
the retrieval stage's work (``rag.retrieval``). It is both sides of the index contract
(``rag.index.base.IndexReader`` and ``IndexWriter``) over any ``VectorStore`` and
``LexicalIndex`` (Chroma and BM25 segments by default, see :func:`open_store`).

Write order (crash-safe): mark the document ``writing`` in the catalog, add its chunks to
the vector store (batch by batch as ingestion embeds them: :class:`DocumentWrite`), then switch
versions in one catalog transaction together with the lexical update and the page records, then
delete the replaced version's chunks. Readers only trust chunks of active documents,
and take a shared lock around a query so a switch never lands in the middle of one.
Start-up recovery removes leftovers of interrupted writes and rebuilds the lexical side
from the vector store when it is missing or out of step.

Embedding models: each collection is recorded (``rag.catalog.CollectionEmbedding``) with the
model, backend and dimension of its vectors and the vector-store collection that holds them
(its "physical" name: the collection's own name until a re-index). A query whose vector another
model made (``rag.vectors.spec_of``; an untagged vector by its dimension), or a write through
another model, raises ``EmbeddingModelMismatch`` (409) instead of comparing unrelated spaces.
A collection's first write records it; one recorded before this existed is recorded on open
as the configured model (``RAG_EMBEDDING_MODEL``) over the vectors it has.

Re-index (orchestrated by ``service.reindex``): :meth:`DocumentStore.begin_reindex` notes a new
physical collection in the catalog, :meth:`~DocumentStore.put_reindexed` fills it while queries
and writes keep using the old one, and :meth:`~DocumentStore.finish_reindex`, under the write
lock, copies what changed meanwhile and switches the collection to it in one catalog
transaction. The replaced vectors stay readable, for queries embedded before the switch, until
:meth:`~DocumentStore.drop_retired`. A re-index that never switched, and retired vectors never
dropped, are removed on the next open.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.blobs import open_blob_store
from rag.catalog import (
    ACTIVE,
    BUILDING,
    RETIRED,
    WRITING,
    Catalog,
    CollectionEmbedding,
    VectorSet,
    discard_unfinished,
)
from rag.db import database
from rag.errors import Conflict, EmbeddingModelMismatch, IndexUnavailable, JobCancelled, NotFound
from rag.index.base import LexicalIndex, VectorStore
from rag.index.chroma_store import ChromaStore, collection_key, make_client
from rag.index.lexical import BM25Index
from rag.index.lock import WriterLock
from rag.index.originals import OriginalStore
from rag.index.rwlock import ReadWriteLock
from rag.logs import log_event
from rag.models import canonical_model_name
from rag.naming import DocumentNames, describe_document
from rag.settings import Settings
from rag.types import Chunk, Document, Filters, Hit, PageRecord, StoredChunk, chunk_id, indexed_text
from rag.vectors import DEFAULT_BACKEND, EmbeddingSpec, spec_of

log = logging.getLogger(__name__)


LexicalOpener = Callable[[str], LexicalIndex]
"""Collection -> its lexical index as last saved (generation -1 when missing or unreadable)."""

Rows = list[tuple[str, str, dict[str, Any]]]
"""Chunks as the vector store returns them: ``(chunk_id, text, metadata)``."""

EmbedTexts = Callable[[list[str]], npt.NDArray[np.float32]]


def keyword_text(text: str, meta: dict[str, Any]) -> str:
    """What the lexical side indexes for a stored chunk: its context header, then its text."""
    return indexed_text(text or "", str(meta.get("context") or ""))


def embedded_text(text: str, meta: dict[str, Any]) -> str:
    """What ingestion embedded for a stored chunk: the header too only if it was embedded."""
    return keyword_text(text, meta) if meta.get("context_embedded") else text or ""


@dataclass
class Reindex:
    """A re-index under way: the collection, the vectors it replaces and the ones being built."""

    collection: str
    source: CollectionEmbedding
    physical: str
    spec: EmbeddingSpec
    copied: dict[str, int] = field(default_factory=dict)
    """Chunks stored in the new vector set, per document."""


class DocumentStore:
    """The service's index. Open it with :func:`open_store`."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        vectors: VectorStore,
        open_lexical: LexicalOpener,
        lock: WriterLock | None,
        originals: OriginalStore | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.originals = originals or OriginalStore(
            settings.originals_dir,
            blobs=open_blob_store(settings.blob_url, settings.data_dir / "blobs", settings.s3_endpoint_url)
            if settings.blob_url
            else None,
            cache_bytes=settings.originals_cache_mb * 2**20,
        )
        self.vectors = vectors
        self._open_lexical = open_lexical
        self._lock = lock
        self._rw = ReadWriteLock()
        self._write_lock = threading.Lock()
        self._writing: set[str] = set()
        """Documents being written by this process (``begin`` to ``commit`` or ``abort``)."""
        self._writing_changed = threading.Condition()
        self._lexical: dict[str, LexicalIndex] = {}
        self._active: dict[str, tuple[int, set[str]]] = {}
        self._names: dict[str, tuple[int, DocumentNames]] = {}
        self._implied_dims: dict[str, int] = {}
        self.shared = settings.database_url is not None
        """Other processes write the same catalog and vectors (``RAG_DATABASE_URL``): this process's
        lexical indexes catch up with the catalog before each search instead of trusting their cache."""
        self._catch_up_lock = threading.Lock()
        self.default_model = canonical_model_name(settings.embedding_model)
        self.default_backend: str = getattr(settings, "embedding_backend", DEFAULT_BACKEND)
        """The model a write without an explicit spec, and a collection recorded on open, are taken to use."""

    @property
    def writable(self) -> bool:
        return self._lock is not None and self._lock.held

    def close(self) -> None:
        self.catalog.close()
        if self._lock is not None:
            self._lock.release()

    # --- consistency ----------------------------------------------------------------

    @contextmanager
    def consistent_read(self) -> Iterator[None]:
        """Hold across the searches and ``get`` of one query: no version switch in between."""
        with self._rw.read():
            yield

    def _lexical_for(self, collection: str) -> LexicalIndex:
        lex = self._lexical.get(collection)
        if lex is not None and self.writable and not self.shared:
            return lex  # only this process writes, and it keeps the cached index in step
        generation = self.catalog.generation(collection)
        if lex is not None and lex.generation == generation:
            return lex
        if self.shared:
            return self._catch_up(collection, generation)
        lex = self._open_lexical(collection)
        if lex.generation != generation and self.writable:
            lex = self._rebuild_lexical(collection, generation)
        self._lexical[collection] = lex
        return lex

    def _catch_up(self, collection: str, generation: int) -> LexicalIndex:
        """Bring this process's lexical index in step with a catalog other processes write.

        The difference between the documents it holds and the active ones is applied: chunks of
        documents activated elsewhere are read from the vector store (written there before their
        activation, so they are present), those of removed or replaced versions dropped. A
        missing index, or one that lacks most of the collection, is rebuilt instead.
        """
        with self._catch_up_lock:
            lex = self._lexical.get(collection)
            if lex is not None and lex.generation == generation:
                return lex
            if lex is None:
                lex = self._open_lexical(collection)
            if lex.generation == generation:
                self._lexical[collection] = lex
                return lex
            started = time.perf_counter()
            active = {d.id: d for d in self.catalog.documents(collection)}
            held = lex.doc_ids() if isinstance(lex, BM25Index) else set()
            missing = [doc for doc_id, doc in active.items() if doc_id not in held]
            if (
                lex.generation < 0
                or not isinstance(lex, BM25Index)
                or len(missing) > max(100, len(active) // 2)
            ):
                lex = self._rebuild_lexical(collection, generation)
            else:
                lex.remove_documents(held - set(active))
                physical = self._physical(collection)
                for doc in missing:
                    rows = self.vectors.get(physical, document_chunk_ids(doc))
                    lex.add(
                        [cid for cid, _, _ in rows],
                        [str(meta["doc_id"]) for _, _, meta in rows],
                        [keyword_text(text, meta) for _, text, meta in rows],
                    )
                lex.save(generation)
                log_event(
                    log,
                    "lexical index caught up with the catalog",
                    collection=collection,
                    added=len(missing),
                    generation=generation,
                    ms=round((time.perf_counter() - started) * 1000, 1),
                )
            self._lexical[collection] = lex
            return lex

    def warm(self) -> list[str]:
        """Load every collection's lexical segments and vector index now, before a question needs
        them: at 1M chunks the first search of a fresh process otherwise spends about 3 s reading
        HNSW files and BM25 postings. Returns the collections warmed."""
        self.warm_lexical()
        return self.warm_vectors()

    def warm_lexical(self) -> list[str]:
        """The lexical half of :meth:`warm` (holds the GIL: about 0.8 s at 1M chunks)."""
        collections = self.catalog.collections()
        for collection in collections:
            self._lexical_for(collection)
            self._active_ids(collection)
            self.document_names(collection)
        return collections

    def warm_vectors(self) -> list[str]:
        """The vector half of :meth:`warm`: one search per collection loads its HNSW index (about
        2 s at 1M chunks in Chroma's own threads, with the GIL released, so it overlaps with
        loading the embedding model)."""
        collections = self.catalog.collections()
        for collection in collections:
            record = self.embedding(collection)
            if record is not None:
                probe = np.full(record.spec.dim, record.spec.dim**-0.5, dtype=np.float32)
                self.vectors.query(record.physical, probe, 1, None)
        return collections

    def document_names(self, collection: str) -> DocumentNames:
        generation = self.catalog.generation(collection)
        cached = self._names.get(collection)
        if cached is not None and cached[0] == generation:
            return cached[1]
        names = DocumentNames({d.id: describe_document(d) for d in self.catalog.documents(collection)})
        self._names[collection] = (generation, names)
        return names

    def _active_ids(self, collection: str) -> set[str]:
        generation = self.catalog.generation(collection)
        cached = self._active.get(collection)
        if cached is not None and cached[0] == generation:
            return cached[1]
        ids = self.catalog.active_ids(collection)
        self._active[collection] = (generation, ids)
        return ids

    def recover(self) -> dict[str, Any]:
        """Undo interrupted writes and bring the lexical side in step with the vector store."""
        report: dict[str, Any] = {
            "discarded": [],
            "orphan_chunks": 0,
            "rebuilt": [],
            "recorded": [],
            "dropped_vector_sets": [],
        }
        # shared engines: another process may be re-indexing or writing right now, so only what
        # was left long ago is someone's crash (a write takes seconds between its two steps)
        for vector_set in [] if self.shared else self.catalog.vector_sets():
            # a re-index that never switched, or vectors one replaced: nothing reads them now
            self.vectors.drop(vector_set.physical)
            self.catalog.forget_vector_set(vector_set.physical)
            report["dropped_vector_sets"].append(f"{vector_set.collection} ({vector_set.state})")
        stale_before = time.time() - SHARED_WRITE_STALE_S if self.shared else None
        for doc in self.catalog.unfinished(updated_before=stale_before):
            self.vectors.delete_documents(self._physical(doc.collection), [doc.id])
            discard_unfinished(self.catalog, doc.id)
            report["discarded"].append(doc.id)
        swept = self.originals.sweep({d.id for d in self.catalog.documents(state=None)})
        if swept:
            report["orphan_originals"] = len(swept)
        for collection in self.catalog.collections():
            if self.catalog.embedding(collection) is None:
                implied = self._implied(collection)
                if implied is not None:  # recorded before collections recorded their model
                    self.catalog.record_embedding(collection, implied.physical, implied.spec)
                    report["recorded"].append(collection)
            if self.shared:  # catch up with what the others wrote; their writes in flight are theirs
                self._lexical_for(collection)
                continue
            physical = self._physical(collection)
            active = self.catalog.active_ids(collection)
            if self.vectors.count(physical) != self.catalog.active_chunk_total(collection):
                orphans = {
                    str(meta["doc_id"])
                    for _, _, meta in self.vectors.scan(physical, with_text=False)
                    if str(meta["doc_id"]) not in active
                }
                self.vectors.delete_documents(physical, sorted(orphans))
                report["orphan_chunks"] += len(orphans)
            generation = self.catalog.generation(collection)
            lex = self._open_lexical(collection)
            expected = self.catalog.active_chunk_total(collection)
            if lex.generation != generation or lex.size != expected:
                lex = self._rebuild_lexical(collection, generation)
                report["rebuilt"].append(collection)
            self._lexical[collection] = lex
        if any(report.values()):
            log_event(log, "index recovered", **report)
        return report

    def _rebuild_lexical(self, collection: str, generation: int) -> LexicalIndex:
        started = time.perf_counter()
        active = self.catalog.active_ids(collection)
        lex = self._open_lexical(collection)
        lex.clear()
        batch: tuple[list[str], list[str], list[str]] = ([], [], [])
        for cid, text, meta in self.vectors.scan(self._physical(collection)):
            if str(meta["doc_id"]) in active:
                batch[0].append(cid)
                batch[1].append(str(meta["doc_id"]))
                batch[2].append(keyword_text(text, meta))
            if len(batch[0]) >= 5000:
                lex.add(*batch)
                batch = ([], [], [])
        lex.add(*batch)
        lex.save(generation)
        log_event(
            log,
            "lexical index rebuilt from the vector store",
            collection=collection,
            chunks=lex.size,
            seconds=round(time.perf_counter() - started, 2),
        )
        return lex

    # --- writes ---------------------------------------------------------------------

    def write(
        self,
        document: Document,
        chunks: list[Chunk],
        vectors: npt.NDArray[np.float32],
        *,
        embedding: EmbeddingSpec | None = None,
        pages: Sequence[PageRecord] = (),
        original: Path | None = None,
    ) -> bool:
        """Store a document whole; ``False`` if these exact bytes are already active (no work done).

        ``embedding`` is the model that made ``vectors`` (default: the configured model); it
        must be the collection's (``EmbeddingModelMismatch``), and a collection's first write
        records it. ``pages`` (text and word boxes) and the ``original`` file are kept with the
        document, for rendering its pages, and go with it.
        """
        writing = self.begin(document, embedding=embedding, original=original)
        try:
            writing.add(chunks, vectors)
        except BaseException:
            writing.abort()
            raise
        return writing.commit(pages)

    def begin(
        self, document: Document, *, embedding: EmbeddingSpec | None = None, original: Path | None = None
    ) -> DocumentWrite:
        """Start writing ``document`` part by part (``rag.index.base.DocumentWrite``).

        A second write of the same document in this process waits here for the first to end
        (the job queue already runs one job per document id across processes)."""
        with self._writing_changed:
            while document.id in self._writing:
                self._writing_changed.wait()
            self._writing.add(document.id)
        try:
            return DocumentWrite(self, document, embedding, original)
        except BaseException:  # the catalog could not be read: nothing was started
            self._end_write(document.id)
            raise

    def _end_write(self, doc_id: str) -> None:
        with self._writing_changed:
            self._writing.discard(doc_id)
            self._writing_changed.notify_all()

    def delete(self, doc_id: str) -> None:
        with self._write_lock:
            doc = self.catalog.get(doc_id)
            if doc is None:
                raise NotFound(f"document {doc_id} not found")
            lex = self._lexical_for(doc.collection)
            with self._rw.write():
                removed = self.catalog.remove(doc_id)
                if removed is not None:
                    before = lex.generation
                    lex.remove_documents({doc_id})
                    lex.save(removed[1] if not self.shared or removed[1] == before + 1 else before)
            self.vectors.delete_documents(self._physical(doc.collection), [doc_id])
            self.originals.remove(doc_id)

    def page(self, doc_id: str, page_no: int) -> PageRecord | None:
        """A stored page's text and word boxes (``None``: no such page, or stored before pages were)."""
        return self.catalog.page(doc_id, page_no)

    def writer_for(self, embedding: EmbeddingSpec) -> BoundWriter:
        """The write side for vectors that ``embedding`` makes (an ingestion pipeline's model)."""
        return BoundWriter(self, embedding)

    # --- embedding models -------------------------------------------------------------

    def embedding(self, collection: str) -> CollectionEmbedding | None:
        """The model and physical vectors serving ``collection``; ``None`` when it has no vectors.

        As recorded; for a collection recorded before records existed (read by a reader, before
        any writer opened), the configured model over the vectors it has.
        """
        return self.catalog.embedding(collection) or self._implied(collection)

    def _implied(self, collection: str) -> CollectionEmbedding | None:
        dim = self._implied_dims.get(collection)
        if dim is None:
            dim = self.vectors.dimension(collection)
            if dim is None:
                return None
            self._implied_dims[collection] = dim
        return CollectionEmbedding(
            collection, collection, EmbeddingSpec(self.default_model, self.default_backend, dim)
        )

    def _physical(self, collection: str) -> str:
        record = self.catalog.embedding(collection)
        return record.physical if record is not None else collection

    def _physical_for_write(
        self, collection: str, vectors: npt.NDArray[np.float32], embedding: EmbeddingSpec | None
    ) -> str:
        if vectors.ndim != 2 or vectors.shape[0] == 0:
            return self._physical(collection)
        dim = int(vectors.shape[1])
        spec = embedding or EmbeddingSpec(self.default_model, self.default_backend, dim)
        if spec.dim != dim:
            raise EmbeddingModelMismatch(
                f"vectors of {dim} dims were given as made by {spec.describe()}", collection=collection
            )
        record = self.embedding(collection)
        if record is None:
            return self.catalog.record_embedding(collection, collection, spec).physical
        if record.spec.matches(spec):
            return record.physical
        if self._is_empty(collection, record):  # nothing to mismatch: it takes the new model
            # in new vectors: a vector store may hold an empty collection to its first width
            renewed = self.catalog.record_embedding(collection, _new_physical(collection), spec)
            self.vectors.drop(record.physical)
            return renewed.physical
        raise _mismatch(record, spec, dim, "write")

    def _is_empty(self, collection: str, record: CollectionEmbedding) -> bool:
        return (
            not self.catalog.documents(collection, state=None)
            and not self.catalog.vector_sets(BUILDING, collection)
            and self.vectors.count(record.physical) == 0
        )

    def _physical_for_query(self, collection: str, query_vec: npt.NDArray[np.float32]) -> str | None:
        record = self.embedding(collection)
        if record is None:
            return None  # never written: nothing to find
        spec, dim = spec_of(query_vec), int(np.shape(query_vec)[-1])
        if spec is None and dim == record.spec.dim:
            return record.physical  # made elsewhere: its width is all that can be checked
        if spec is not None and spec.matches(record.spec):
            return record.physical
        if spec is not None:
            for retired in self.catalog.vector_sets(RETIRED, collection):
                if retired.spec.matches(spec):  # embedded just before a re-index switched models
                    return retired.physical
        raise _mismatch(record, spec, dim, "query")

    # --- re-index: the same chunks under another model --------------------------------

    def begin_reindex(self, collection: str, spec: EmbeddingSpec) -> Reindex:
        """Start building ``collection``'s vectors anew with ``spec``'s model (writers only)."""
        if not self.writable:
            raise Conflict("re-indexing needs the writer's lock on the data directory")
        with self._write_lock:
            source = self.embedding(collection)
            if source is None or not self.catalog.documents(collection):
                raise NotFound(f"collection {collection!r} has no documents to re-index")
            if self.catalog.vector_sets(BUILDING, collection):
                raise Conflict(f"a re-index of collection {collection!r} is already under way")
            if source.physical == collection and self.catalog.embedding(collection) is None:
                self.catalog.record_embedding(collection, source.physical, source.spec)
            physical = _new_physical(collection)
            self.catalog.begin_vector_set(collection, physical, spec)
        log_event(
            log,
            "re-index started",
            collection=collection,
            source=source.spec.describe(),
            target=spec.describe(),
            physical=physical,
        )
        return Reindex(collection, source, physical, spec)

    def active_documents(self, collection: str) -> list[Document]:
        return self.catalog.documents(collection)

    def read_chunks(self, job: Reindex, chunk_ids: list[str]) -> Rows:
        """Stored chunks (text and metadata), from the vectors the collection is served from."""
        return self.vectors.get(job.source.physical, chunk_ids)

    def put_reindexed(self, job: Reindex, rows: Rows, vectors: npt.NDArray[np.float32]) -> None:
        """Store re-embedded chunks in the vector set being built (read nowhere until the switch)."""
        if len(rows) != len(vectors) or (len(rows) and int(vectors.shape[1]) != job.spec.dim):
            raise ValueError(f"{len(vectors)} vectors for {len(rows)} chunks, or not {job.spec.dim} dims")
        self.vectors.put(job.physical, rows, vectors)
        for _, _, meta in rows:
            doc_id = str(meta["doc_id"])
            job.copied[doc_id] = job.copied.get(doc_id, 0) + 1

    def finish_reindex(self, job: Reindex, embed: EmbedTexts) -> VectorSet | None:
        """Catch up with writes made meanwhile, then switch the collection to the new vectors.

        Under the write lock, so no write lands between the catch-up and the switch: documents
        deleted or replaced since are removed from the new set, documents added since (or not
        copied whole) are embedded with ``embed`` and added. The switch itself is one catalog
        transaction, taken with the readers' lock, so a query sees one model or the other.
        Returns the replaced vectors (retired, still readable until :meth:`drop_retired`).
        """
        with self._write_lock:
            active = {d.id: d for d in self.catalog.documents(job.collection)}
            stale = sorted(d for d in job.copied if d not in active)
            if stale:
                self.vectors.delete_documents(job.physical, stale)
                for doc_id in stale:
                    job.copied.pop(doc_id, None)
            missing = [d for d in active.values() if job.copied.get(d.id) != d.chunks]
            if missing:  # partly copied ones start over
                self.vectors.delete_documents(job.physical, [d.id for d in missing])
                for d in missing:
                    job.copied.pop(d.id, None)
            ids = [cid for d in missing for cid in document_chunk_ids(d)]
            for start in range(0, len(ids), 256):
                rows = self.read_chunks(job, ids[start : start + 256])
                self.put_reindexed(job, rows, embed([embedded_text(t, m) for _, t, m in rows]))
            expected = self.catalog.active_chunk_total(job.collection)
            built = self.vectors.count(job.physical)
            if built != expected:
                raise IndexUnavailable(
                    f"the re-index of {job.collection!r} built {built} chunks of {expected}; not switched"
                )
            with self._rw.write():
                retired = self.catalog.switch_vector_set(job.collection, job.physical)
        log_event(
            log,
            "re-index switched",
            collection=job.collection,
            model=job.spec.describe(),
            chunks=built,
            caught_up=len(missing),
            removed=len(stale),
        )
        return retired

    def abandon_reindex(self, job: Reindex) -> None:
        """Drop the vectors a failed re-index built; the collection never stopped using its own."""
        self.catalog.forget_vector_set(job.physical)
        self.vectors.drop(job.physical)

    def drop_retired(self, retired: VectorSet) -> None:
        """Delete replaced vectors once no query can be reading them."""
        self.catalog.forget_vector_set(retired.physical)  # new queries no longer find them
        with self._rw.write():
            pass  # queries already inside have finished
        self.vectors.drop(retired.physical)

    # --- reads ----------------------------------------------------------------------

    def _allowed(self, collection: str, filters: Filters | None) -> set[str] | None:
        return self.catalog.matching_ids(collection, filters) if filters else None

    def dense(
        self, query_vec: npt.NDArray[np.float32], k: int, collection: str, filters: Filters | None = None
    ) -> list[Hit]:
        physical = self._physical_for_query(collection, query_vec)
        if physical is None:
            return []
        allowed = self._allowed(collection, filters)
        if allowed is not None and not allowed:
            return []
        active = self._active_ids(collection)
        fetch = k
        while True:
            raw = self.vectors.query(
                physical, query_vec, fetch, sorted(allowed) if allowed is not None else None
            )
            kept = [r for r in raw if r[1] in active]
            if len(kept) >= k or len(raw) < fetch or fetch >= 8 * k:
                break
            fetch *= 2  # chunks of an unfinished or replaced version were in the way
        return [Hit(cid, did, score, rank) for rank, (cid, did, score) in enumerate(kept[:k], start=1)]

    def lexical(self, query: str, k: int, collection: str, filters: Filters | None = None) -> list[Hit]:
        allowed = self._allowed(collection, filters)
        if allowed is not None and not allowed:
            return []
        found = self._lexical_for(collection).search(query, k, allowed)
        return [Hit(cid, did, score, rank) for rank, (cid, did, score) in enumerate(found, start=1)]

    def get(self, chunk_ids: list[str]) -> list[StoredChunk]:
        by_doc: dict[str, list[str]] = {}
        for cid in dict.fromkeys(chunk_ids):  # a chunk asked twice is read once (Chroma refuses repeats)
            by_doc.setdefault(cid.split(":", 1)[0], []).append(cid)
        found: dict[str, StoredChunk] = {}
        physical: dict[str, str] = {}
        for doc_id, ids in by_doc.items():
            doc = self.catalog.get(doc_id)
            if doc is None or doc.state != ACTIVE:
                continue
            if doc.collection not in physical:
                physical[doc.collection] = self._physical(doc.collection)
            for cid, text, meta in self.vectors.get(physical[doc.collection], ids):
                found[cid] = StoredChunk(
                    chunk=Chunk(
                        id=cid,
                        doc_id=doc_id,
                        ordinal=int(meta["ordinal"]),
                        text=text or "",
                        page_start=int(meta["page_start"]),
                        page_end=int(meta["page_end"]),
                        char_start=int(meta["char_start"]),
                        char_end=int(meta["char_end"]),
                        token_count=int(meta["token_count"]),
                        heading=meta.get("heading"),
                        context=str(meta.get("context") or ""),
                        context_embedded=bool(meta.get("context_embedded")),
                    ),
                    document_name=doc.name,
                    collection=doc.collection,
                    content_sha256=doc.content_sha256,
                )
        return [found[c] for c in chunk_ids if c in found]

    def stats(self) -> dict[str, Any]:
        collections = {}
        for collection in self.catalog.collections():
            docs = self.catalog.documents(collection)
            expected = sum(d.chunks for d in docs)
            record = self.embedding(collection)
            chroma = self.vectors.count(record.physical if record else collection)
            lexical = self._lexical_for(collection).size
            writing = len(self.catalog.documents(collection, state=WRITING))
            collections[collection] = {
                "documents": len(docs),
                "chunks": expected,
                "chroma_chunks": chroma,
                "lexical_chunks": lexical,
                "documents_writing": writing,
                "generation": self.catalog.generation(collection),
                # a write in progress has stored some vectors of a document not yet switched on
                "consistent": expected == lexical
                and (chroma == expected or (writing > 0 and chroma > expected)),
                "embedding": (
                    {"model": record.spec.model, "backend": record.spec.backend, "dim": record.spec.dim}
                    if record
                    else None
                ),
            }
        return {
            "backend": "chroma-http" if self.settings.chroma_url else "chroma-embedded",
            "writable": self.writable,
            "collections": collections,
        }


SHARED_WRITE_STALE_S = 15 * 60.0
"""With shared engines, a document left ``writing`` this long is a dead process's, not a live one's."""


def _new_physical(collection: str) -> str:
    """A fresh vector-store name for a collection's vectors ("/" is never in a collection's name)."""
    return f"{collection}/{uuid.uuid4().hex[:12]}"


def document_chunk_ids(document: Document) -> list[str]:
    """The ids of a document's chunks (ordinals run from 0, one per chunk)."""
    return [chunk_id(document.id, n) for n in range(document.chunks)]


def _mismatch(
    record: CollectionEmbedding, spec: EmbeddingSpec | None, dim: int, action: str
) -> EmbeddingModelMismatch:
    made = spec.describe() if spec is not None else f"a model of {dim} dims"
    return EmbeddingModelMismatch(
        f"collection {record.collection!r} is indexed with {record.spec.describe()}, but this {action}"
        f" was embedded with {made}; use the collection's model, or re-index the collection"
        f" (rag reindex --collection {record.collection} --model MODEL)",
        collection=record.collection,
        indexed_with=record.spec.describe(),
        embedded_with=made,
    )


class DocumentWrite:
    """One document's write in progress (``rag.index.base.DocumentWrite``).

    The first ``add`` checks the vectors' model against the collection's, keeps the original and
    marks the document ``writing`` in the catalog (under the store's write lock, so it orders with
    other writes and deletes); every ``add`` then stores its vectors outside that lock, after a
    heartbeat on the catalog row (a deleted document stops its ingestion at the next batch, and
    shared engines do not take a long write for a dead one). ``commit`` is the old single write's
    switch: pages, lexical side and catalog in one step, then the replaced version's chunks go.
    Vectors added before a crash belong to a ``writing`` row, which recovery removes with them.
    """

    def __init__(
        self, store: DocumentStore, document: Document, embedding: EmbeddingSpec | None, original: Path | None
    ) -> None:
        self._store = store
        self.document = document
        self._embedding = embedding
        self._original = original
        self._physical: str | None = None
        self._dim = 0
        self._chunks: list[Chunk] = []
        self._ended = False
        existing = store.catalog.get(document.id)
        self.duplicate = existing is not None and existing.state == ACTIVE

    def add(self, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        if self._ended:
            raise RuntimeError("this write has ended")
        if self.duplicate or not chunks:
            return
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(vectors)} vectors for {len(chunks)} chunks")
        store = self._store
        if self._physical is None:
            self._start(vectors)
        elif int(vectors.shape[1]) != self._dim:
            raise EmbeddingModelMismatch(
                f"vectors of {int(vectors.shape[1])} dims after vectors of {self._dim}",
                collection=self.document.collection,
            )
        elif not store.catalog.touch_write(self.document.id):
            raise JobCancelled("the document was deleted while it was being ingested")
        assert self._physical is not None
        store.vectors.add(replace(self.document, collection=self._physical), chunks, vectors)
        self._chunks.extend(chunks)

    def _start(self, vectors: npt.NDArray[np.float32]) -> None:
        store, document = self._store, self.document
        with store._write_lock:
            physical = store._physical_for_write(document.collection, vectors, self._embedding)
            self._physical = physical
            self._dim = int(vectors.shape[1]) if vectors.ndim == 2 else 0
            if self._original is not None:
                store.originals.keep(document.id, self._original)
            store.catalog.begin_write(document)
            store.vectors.delete_documents(physical, [document.id])  # an unfinished earlier try's

    def commit(self, pages: Sequence[PageRecord] = ()) -> bool:
        if self._ended:
            raise RuntimeError("this write has ended")
        if self.duplicate:
            self._end()
            return False
        store, document = self._store, self.document
        try:
            if self._physical is None:
                self._start(np.zeros((0, 0), dtype=np.float32))
            physical = self._physical
            assert physical is not None
            chunks = self._chunks
            with store._write_lock:
                record = store.catalog.embedding(document.collection)
                if chunks and record is not None and record.physical != physical:
                    # a re-index switched the collection's model while these vectors were made
                    raise _mismatch(record, self._embedding, self._dim, "write")
                document.chunks = len(chunks)
                # load (or rebuild) the lexical side before the switch, while it is still in step
                lex = store._lexical_for(document.collection)
                with store._rw.write():
                    before = lex.generation
                    replaced, generation = store.catalog.activate(document, pages)
                    lex.remove_documents(set(replaced))
                    lex.add(
                        [c.id for c in chunks], [c.doc_id for c in chunks], [c.indexed_text for c in chunks]
                    )
                    # another process's switch in between: this index lacks it, so it claims
                    # only the generation it was in step with, and catches up before the next search
                    lex.save(generation if not store.shared or generation == before + 1 else before)
        except BaseException:
            self.abort()
            raise
        self._end()
        store.vectors.delete_documents(physical, replaced)
        for old in replaced:
            store.originals.remove(old)
        return True

    def abort(self) -> None:
        if self._ended:
            return
        store, doc_id = self._store, self.document.id
        try:
            if self._physical is not None:
                written = store.catalog.get(doc_id)
                if written is None or written.state != ACTIVE:
                    store.originals.remove(doc_id)
                    store.vectors.delete_documents(self._physical, [doc_id])
                    discard_unfinished(store.catalog, doc_id)
        except Exception as exc:  # the index is unreachable: recovery removes the rest
            log_event(log, "unfinished write left for recovery", document_id=doc_id, error=str(exc))
        finally:
            self._end()

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            self._store._end_write(self.document.id)


class BoundWriter:
    """The store's write side for one embedding model (``rag.index.base.IndexWriter``)."""

    def __init__(self, store: DocumentStore, embedding: EmbeddingSpec) -> None:
        self._store = store
        self.embedding = embedding

    @property
    def catalog(self) -> Catalog:
        return self._store.catalog

    def write(
        self,
        document: Document,
        chunks: list[Chunk],
        vectors: npt.NDArray[np.float32],
        *,
        pages: Sequence[PageRecord] = (),
        original: Path | None = None,
    ) -> bool:
        return self._store.write(
            document, chunks, vectors, embedding=self.embedding, pages=pages, original=original
        )

    def begin(self, document: Document, *, original: Path | None = None) -> DocumentWrite:
        return self._store.begin(document, embedding=self.embedding, original=original)

    def delete(self, doc_id: str) -> None:
        self._store.delete(doc_id)


def open_store(settings: Settings, *, writer: bool = True) -> DocumentStore:
    """Open the store (Chroma and BM25 segments); a writer takes the data-directory lock and recovers."""
    lock = None
    if writer:
        lock = WriterLock(settings.data_dir)
        lock.acquire()
    try:
        catalog = Catalog(database(settings, "catalog"), migrate_now=settings.migrate_on_start)
        vectors = ChromaStore(make_client(settings), settings.chroma_hnsw_ef_search)

        def open_lexical(collection: str) -> LexicalIndex:
            return BM25Index.load(settings.lexical_dir / collection_key(collection))

        store = DocumentStore(settings, catalog, vectors, open_lexical, lock)
        if writer:
            store.recover()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return store
