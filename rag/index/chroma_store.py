"""Chroma access: embedded ``PersistentClient`` by default, ``HttpClient`` for a server.

``ChromaStore`` is the ``rag.index.base.VectorStore`` of the service. Every call into Chroma
goes through :func:`_chroma`, which turns Chroma's own failures (a server that went away, a
broken local store) into ``IndexUnavailable``, so a query answers 503 ``index_unavailable``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt

from rag.errors import IndexUnavailable
from rag.settings import Settings
from rag.types import Chunk, Document

GET_PAGE = 5000  # Chroma fails on get() of more than 32,766 records at once
ADD_STEP = 512
"""Chunks per embedded-Chroma ``add``: the call holds the GIL throughout (a thread beside it ran
at 1% of its speed), so 5,000 chunks at once froze every query of the process for 4 s; 512 at a
time stop it for 0.5 s at most and write as fast (5,000 chunks: 3.9-4.3 s either way)."""


@lru_cache(maxsize=1)
def _chroma_failures() -> tuple[type[BaseException], ...]:
    """What a Chroma call raises when the store cannot answer: its own errors, HTTP and OS errors."""
    import httpx
    from chromadb.errors import ChromaError

    return (ChromaError, httpx.HTTPError, OSError)


@contextmanager
def _chroma(action: str) -> Iterator[None]:
    try:
        yield
    except _chroma_failures() as exc:
        raise IndexUnavailable(f"Chroma could not {action} ({exc.__class__.__name__}: {exc})") from exc


def _not_found() -> type[BaseException]:
    from chromadb.errors import NotFoundError

    return NotFoundError


def collection_key(collection: str) -> str:
    """Chroma names allow few characters; user collection names map to a stable hash."""
    return "rag_" + hashlib.sha256(collection.encode()).hexdigest()[:24]


def make_client(settings: Settings) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    try:
        if settings.chroma_url:
            url = urlparse(settings.chroma_url)
            return chromadb.HttpClient(
                host=url.hostname or "localhost",
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
        settings.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)
    except Exception as exc:
        raise IndexUnavailable(f"cannot open Chroma ({exc.__class__.__name__}: {exc})") from exc


class ChromaStore:
    """Chunks, vectors and citation metadata; the source of truth for the lexical side."""

    def __init__(self, client: Any, ef_search: int = 100) -> None:
        self._client = client
        self._ef_search = ef_search
        self._collections: dict[str, Any] = {}
        with _chroma("answer"):
            has_limit = hasattr(client, "get_max_batch_size")
            self.max_batch = int(client.get_max_batch_size()) if has_limit else 5000

    def _collection(self, collection: str, create: bool = True) -> Any | None:
        cached = self._collections.get(collection)
        if cached is not None:
            return cached
        key = collection_key(collection)
        if create:
            with _chroma("open a collection"):
                col = self._client.get_or_create_collection(
                    key,
                    configuration={
                        "hnsw": {"space": "cosine", "ef_search": self._ef_search, "ef_construction": 200}
                    },
                    metadata={"rag_collection": collection},
                    embedding_function=None,
                )
        else:
            with _chroma("open a collection"):
                try:
                    col = self._client.get_collection(key, embedding_function=None)
                except _not_found():
                    return None  # never written: reads as empty
        self._collections[collection] = col
        return col

    def add(self, document: Document, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> None:
        col = self._collection(document.collection)
        assert col is not None
        step = min(self.max_batch, ADD_STEP)
        for start in range(0, len(chunks), step):
            part = chunks[start : start + step]
            with _chroma("store chunks"):
                col.add(
                    ids=[c.id for c in part],
                    embeddings=vectors[start : start + step],
                    documents=[c.text for c in part],
                    metadatas=[self._metadata(document, c) for c in part],
                )

    @staticmethod
    def _metadata(document: Document, chunk: Chunk) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "doc_id": chunk.doc_id,
            "ordinal": chunk.ordinal,
            "page_start": chunk.page_start,
            "page_end": chunk.page_end,
            "char_start": chunk.char_start,
            "char_end": chunk.char_end,
            "token_count": chunk.token_count,
            "document_name": document.name,
            "content_sha256": document.content_sha256,
        }
        if chunk.heading:
            meta["heading"] = chunk.heading[:500]
        if chunk.context:  # kept so the lexical side can be rebuilt with the same indexed text
            meta["context"] = chunk.context
            if chunk.context_embedded:  # and a re-index embeds what ingestion embedded
                meta["context_embedded"] = True
        return meta

    def delete_documents(self, collection: str, doc_ids: list[str]) -> None:
        col = self._collection(collection, create=False)
        if col is None or not doc_ids:
            return
        for start in range(0, len(doc_ids), 500):
            with _chroma("delete chunks"):
                col.delete(where={"doc_id": {"$in": doc_ids[start : start + 500]}})

    def query(
        self, collection: str, vector: npt.NDArray[np.float32], k: int, doc_ids: list[str] | None
    ) -> list[tuple[str, str, float]]:
        """``(chunk_id, doc_id, cosine similarity)`` best first."""
        col = self._collection(collection, create=False)
        if col is None or k <= 0:
            return []
        with _chroma("search"):
            # no count() first: it is a scan of the collection's rows (about 48 ms at 1M chunks,
            # five times the search); Chroma answers a k larger than the collection with what it has
            where = {"doc_id": {"$in": doc_ids}} if doc_ids is not None else None
            res = col.query(
                query_embeddings=[np.asarray(vector, dtype=np.float32).tolist()],
                n_results=k,
                where=where,
                include=["distances", "metadatas"],
            )
        ids, dists, metas = res["ids"][0], res["distances"][0], res["metadatas"][0]
        # a Chroma server answers a chunk deleted mid-query with no metadata: it is simply gone
        return [
            (i, str(m["doc_id"]), 1.0 - float(d))
            for i, d, m in zip(ids, dists, metas, strict=True)
            if m is not None
        ]

    def get(self, collection: str, chunk_ids: list[str]) -> list[tuple[str, str, dict[str, Any]]]:
        col = self._collection(collection, create=False)
        if col is None or not chunk_ids:
            return []
        out: list[tuple[str, str, dict[str, Any]]] = []
        for start in range(0, len(chunk_ids), GET_PAGE):
            with _chroma("read chunks"):
                res = col.get(ids=chunk_ids[start : start + GET_PAGE], include=["documents", "metadatas"])
            rows = zip(res["ids"], res["documents"], res["metadatas"], strict=True)
            out.extend((cid, text, meta) for cid, text, meta in rows if meta is not None)
        return out

    def count(self, collection: str) -> int:
        col = self._collection(collection, create=False)
        if col is None:
            return 0
        with _chroma("count chunks"):
            return int(col.count())

    def scan(self, collection: str, with_text: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every chunk of a collection, a page at a time: ``(id, text, metadata)``."""
        col = self._collection(collection, create=False)
        if col is None:
            return
        include = ["documents", "metadatas"] if with_text else ["metadatas"]
        offset = 0
        while True:
            with _chroma("read chunks"):
                res = col.get(limit=GET_PAGE, offset=offset, include=include)
            if not res["ids"]:
                return
            texts = res["documents"] if with_text else [""] * len(res["ids"])
            yield from zip(res["ids"], texts, res["metadatas"], strict=True)
            offset += len(res["ids"])

    def put(
        self,
        collection: str,
        rows: list[tuple[str, str, dict[str, Any]]],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        """Rows as ``get`` returns them, metadata untouched, with new vectors (a re-index)."""
        col = self._collection(collection)
        assert col is not None
        step = min(self.max_batch, ADD_STEP)
        for start in range(0, len(rows), step):
            part = rows[start : start + step]
            with _chroma("store chunks"):
                col.upsert(
                    ids=[cid for cid, _, _ in part],
                    embeddings=vectors[start : start + step],
                    documents=[text for _, text, _ in part],
                    metadatas=[meta for _, _, meta in part],
                )

    def dimension(self, collection: str) -> int | None:
        col = self._collection(collection, create=False)
        if col is None:
            return None
        with _chroma("read a vector"):
            res = col.get(limit=1, include=["embeddings"])
        embeddings = res.get("embeddings")
        if embeddings is None or len(embeddings) == 0:
            return None
        return len(embeddings[0])

    def drop(self, collection: str) -> None:
        self._collections.pop(collection, None)
        with _chroma("drop a collection"):
            try:
                self._client.delete_collection(collection_key(collection))
            except _not_found():
                return
            except ValueError:  # older clients say "does not exist" this way
                return

    def heartbeat(self) -> bool:
        try:
            self._client.heartbeat()
            return True
        except Exception:
            return False
