"""Chroma + lexical index + catalog, composed into the ``Index`` contract.

Write order (crash-safe): mark the document ``writing`` in the catalog, add its chunks to
Chroma, then switch versions in one catalog transaction together with the lexical update,
then delete the replaced version's chunks. Readers only trust chunks of active documents,
and take a shared lock around a query so a switch never lands in the middle of one.
Start-up recovery removes leftovers of interrupted writes and rebuilds the lexical side
from Chroma when it is missing or out of step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.catalog import ACTIVE, Catalog, discard_unfinished
from rag.errors import NotFound
from rag.index.chroma_store import ChromaStore, collection_key, make_client
from rag.index.lexical import LexicalIndex
from rag.index.lock import WriterLock
from rag.index.rwlock import ReadWriteLock
from rag.logs import log_event
from rag.settings import Settings
from rag.types import Chunk, Document, Filters, Hit, StoredChunk

log = logging.getLogger(__name__)


class HybridIndex:
    """The embedded index. Open it with :func:`open_index`."""

    def __init__(
        self, settings: Settings, catalog: Catalog, store: ChromaStore, lock: WriterLock | None
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.store = store
        self._lock = lock
        self._rw = ReadWriteLock()
        self._write_lock = threading.Lock()
        self._lexical: dict[str, LexicalIndex] = {}
        self._active: dict[str, tuple[int, set[str]]] = {}

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
        if lex is not None and self.writable:
            return lex  # only this process writes, and it keeps the cached index in step
        generation = self.catalog.generation(collection)
        if lex is not None and lex.generation == generation:
            return lex
        directory = self.settings.lexical_dir / collection_key(collection)
        lex = LexicalIndex.load(directory)
        if lex.generation != generation and self.writable:
            lex = self._rebuild_lexical(collection, generation)
        self._lexical[collection] = lex
        return lex

    def _active_ids(self, collection: str) -> set[str]:
        generation = self.catalog.generation(collection)
        cached = self._active.get(collection)
        if cached is not None and cached[0] == generation:
            return cached[1]
        ids = self.catalog.active_ids(collection)
        self._active[collection] = (generation, ids)
        return ids

    def recover(self) -> dict[str, Any]:
        """Undo interrupted writes and bring the lexical side in step with Chroma."""
        report: dict[str, Any] = {"discarded": [], "orphan_chunks": 0, "rebuilt": []}
        for doc in self.catalog.unfinished():
            self.store.delete_documents(doc.collection, [doc.id])
            discard_unfinished(self.catalog, doc.id)
            report["discarded"].append(doc.id)
        for collection in self.catalog.collections():
            active = self.catalog.active_ids(collection)
            if self.store.count(collection) != self.catalog.active_chunk_total(collection):
                orphans = {
                    str(meta["doc_id"])
                    for _, _, meta in self.store.scan(collection, with_text=False)
                    if str(meta["doc_id"]) not in active
                }
                self.store.delete_documents(collection, sorted(orphans))
                report["orphan_chunks"] += len(orphans)
            generation = self.catalog.generation(collection)
            lex = LexicalIndex.load(self.settings.lexical_dir / collection_key(collection))
            expected = self.catalog.active_chunk_total(collection)
            if lex.generation != generation or lex.size != expected:
                lex = self._rebuild_lexical(collection, generation)
                report["rebuilt"].append(collection)
            self._lexical[collection] = lex
        if report["discarded"] or report["orphan_chunks"] or report["rebuilt"]:
            log_event(log, "index recovered", **report)
        return report

    def _rebuild_lexical(self, collection: str, generation: int) -> LexicalIndex:
        started = time.perf_counter()
        active = self.catalog.active_ids(collection)
        lex = LexicalIndex(self.settings.lexical_dir / collection_key(collection))
        batch: tuple[list[str], list[str], list[str]] = ([], [], [])
        for cid, text, meta in self.store.scan(collection):
            if str(meta["doc_id"]) in active:
                batch[0].append(cid)
                batch[1].append(str(meta["doc_id"]))
                batch[2].append(text or "")
            if len(batch[0]) >= 5000:
                lex.add(*batch)
                batch = ([], [], [])
        lex.add(*batch)
        lex.save(generation)
        log_event(
            log,
            "lexical index rebuilt from chroma",
            collection=collection,
            chunks=lex.size,
            seconds=round(time.perf_counter() - started, 2),
        )
        return lex

    # --- writes ---------------------------------------------------------------------

    def write(self, document: Document, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> bool:
        """Store a document; ``False`` if these exact bytes are already active (no work done)."""
        with self._write_lock:
            existing = self.catalog.get(document.id)
            if existing is not None and existing.state == ACTIVE:
                return False
            document.chunks = len(chunks)
            self.catalog.begin_write(document)
            self.store.delete_documents(document.collection, [document.id])
            # load (or rebuild) the lexical side before the switch, while it is still in step
            lex = self._lexical_for(document.collection)
            self.store.add(document, chunks, vectors)
            with self._rw.write():
                replaced, generation = self.catalog.activate(document)
                lex.remove_documents(set(replaced))
                lex.add([c.id for c in chunks], [c.doc_id for c in chunks], [c.text for c in chunks])
                lex.save(generation)
            self.store.delete_documents(document.collection, replaced)
            return True

    def delete(self, doc_id: str) -> None:
        with self._write_lock:
            doc = self.catalog.get(doc_id)
            if doc is None:
                raise NotFound(f"document {doc_id} not found")
            lex = self._lexical_for(doc.collection)
            with self._rw.write():
                removed = self.catalog.remove(doc_id)
                if removed is not None:
                    lex.remove_documents({doc_id})
                    lex.save(removed[1])
            self.store.delete_documents(doc.collection, [doc_id])

    # --- reads ----------------------------------------------------------------------

    def _allowed(self, collection: str, filters: Filters | None) -> set[str] | None:
        return self.catalog.matching_ids(collection, filters) if filters else None

    def dense(
        self, query_vec: npt.NDArray[np.float32], k: int, collection: str, filters: Filters | None = None
    ) -> list[Hit]:
        allowed = self._allowed(collection, filters)
        if allowed is not None and not allowed:
            return []
        active = self._active_ids(collection)
        fetch = k
        while True:
            raw = self.store.query(
                collection, query_vec, fetch, sorted(allowed) if allowed is not None else None
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
        for cid in chunk_ids:
            by_doc.setdefault(cid.split(":", 1)[0], []).append(cid)
        found: dict[str, StoredChunk] = {}
        for doc_id, ids in by_doc.items():
            doc = self.catalog.get(doc_id)
            if doc is None or doc.state != ACTIVE:
                continue
            for cid, text, meta in self.store.get(doc.collection, ids):
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
            chroma = self.store.count(collection)
            lexical = self._lexical_for(collection).size
            collections[collection] = {
                "documents": len(docs),
                "chunks": expected,
                "chroma_chunks": chroma,
                "lexical_chunks": lexical,
                "generation": self.catalog.generation(collection),
                "consistent": chroma == expected == lexical,
            }
        return {
            "backend": "chroma-http" if self.settings.chroma_url else "chroma-embedded",
            "writable": self.writable,
            "collections": collections,
        }


def open_index(settings: Settings, *, writer: bool = True) -> HybridIndex:
    """Open the index; a writer takes the data-directory lock and runs recovery."""
    lock = None
    if writer:
        lock = WriterLock(settings.data_dir)
        lock.acquire()
    try:
        catalog = Catalog(settings.catalog_path)
        store = ChromaStore(make_client(settings), settings.chroma_hnsw_ef_search)
        index = HybridIndex(settings, catalog, store, lock)
        if writer:
            index.recover()
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return index
