"""The index contracts: what retrieval reads, what ingestion writes, and the two stores beneath.

``IndexReader`` is all a query needs and ``IndexWriter`` all ingestion needs; the document
store (``rag.index.store.DocumentStore``) is both. Beneath it sit a ``VectorStore`` (chunks,
vectors and citation metadata: the source of truth) and, per collection, a ``LexicalIndex``
derived from it. Chroma and our BM25 segments implement those two today; another backend
(PostgreSQL, a scale-out service) implements the same Protocols and passes the same contract
tests (``tests/rag/test_index.py``). Every implementation reports a backend that cannot answer
as ``rag.errors.IndexUnavailable`` (503 ``index_unavailable``), never as its own exception.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from rag.naming import DocumentNames
from rag.types import Chunk, Document, Filters, Hit, PageRecord, StoredChunk

__all__ = ["DocumentLookup", "DocumentWrite", "IndexReader", "IndexWriter", "LexicalIndex", "VectorStore"]


@runtime_checkable
class IndexReader(Protocol):
    """Dense + lexical search over chunks, partitioned by collection: the read side.

    Readers only ever see documents whose write completed: a new version of a document
    replaces the old one in one step, and a crash mid-write leaves no trace.
    """

    def consistent_read(self) -> AbstractContextManager[None]:
        """Hold across the searches and ``get`` of one query: no version switch lands in between."""
        ...

    def dense(
        self, query_vec: npt.NDArray[np.float32], k: int, collection: str, filters: Filters | None = None
    ) -> list[Hit]: ...

    def lexical(self, query: str, k: int, collection: str, filters: Filters | None = None) -> list[Hit]: ...

    def get(self, chunk_ids: list[str]) -> list[StoredChunk]:
        """The chunks of active documents among ``chunk_ids``, in that order; the others are skipped."""
        ...

    def document_names(self, collection: str) -> DocumentNames:
        """What the collection's active documents are called, to match questions that name one."""
        ...


class DocumentLookup(Protocol):
    """The catalog as a writer consults it before doing any work."""

    def get(self, doc_id: str) -> Document | None: ...


@runtime_checkable
class DocumentWrite(Protocol):
    """One document being written: its vectors are stored as they are made (ingestion embeds the
    next batch meanwhile), and the document becomes visible in one step at ``commit``.

    Until then no reader sees any of it; ``abort``, or a crash (through the store's recovery),
    leaves no trace of it. A write of bytes already stored does nothing and commits ``False``.
    """

    def add(self, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> None: ...

    def commit(self, pages: Sequence[PageRecord] = ()) -> bool:
        """Switch the document on, with its ``pages``; ``False`` when these bytes were stored already.

        ``JobCancelled`` when the document was deleted meanwhile (and nothing of it is left)."""
        ...

    def abort(self) -> None:
        """Remove what was added; safe to call after ``commit`` (then it does nothing)."""
        ...


@runtime_checkable
class IndexWriter(Protocol):
    """The write side: whole documents in, whole documents out."""

    @property
    def catalog(self) -> DocumentLookup: ...

    def begin(self, document: Document, *, original: Path | None = None) -> DocumentWrite:
        """Start writing ``document`` part by part; its ``original`` file is kept with it."""
        ...

    def write(
        self,
        document: Document,
        chunks: list[Chunk],
        vectors: npt.NDArray[np.float32],
        *,
        pages: Sequence[PageRecord] = (),
        original: Path | None = None,
    ) -> bool:
        """Store a document whole (``begin``, one ``add``, ``commit``); ``False`` when these exact
        bytes were already stored. ``pages`` and the ``original`` file are kept with it so its
        pages can be rendered."""
        ...

    def delete(self, doc_id: str) -> None:
        """Remove a document from every side; ``NotFound`` if there is none."""
        ...


@runtime_checkable
class VectorStore(Protocol):
    """Chunks, their vectors and citation metadata, per collection: the source of truth.

    Rows come back as ``(chunk_id, text, metadata)``; the metadata holds at least ``doc_id``,
    ``ordinal``, ``page_start``, ``page_end``, ``char_start``, ``char_end``, ``token_count``
    and, when the chunk has them, ``heading`` and ``context`` (the chunk's context header: the
    lexical side indexes ``rag.types.indexed_text(text, context)``). A collection never
    written reads as empty.
    """

    def add(self, document: Document, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> None: ...

    def delete_documents(self, collection: str, doc_ids: list[str]) -> None: ...

    def query(
        self, collection: str, vector: npt.NDArray[np.float32], k: int, doc_ids: list[str] | None
    ) -> list[tuple[str, str, float]]:
        """``(chunk_id, doc_id, cosine similarity)``, best first; only ``doc_ids`` when given."""
        ...

    def get(self, collection: str, chunk_ids: list[str]) -> list[tuple[str, str, dict[str, Any]]]: ...

    def count(self, collection: str) -> int: ...

    def scan(self, collection: str, with_text: bool = True) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every chunk of a collection (text ``""`` without ``with_text``)."""
        ...

    def put(
        self,
        collection: str,
        rows: list[tuple[str, str, dict[str, Any]]],
        vectors: npt.NDArray[np.float32],
    ) -> None:
        """Store rows as ``get`` returns them, ``(chunk_id, text, metadata)``, with new vectors
        (a re-index copies a collection's chunks, metadata untouched, under another model)."""
        ...

    def dimension(self, collection: str) -> int | None:
        """The width of the stored vectors; ``None`` for a collection without any."""
        ...

    def drop(self, collection: str) -> None:
        """Remove a whole collection (a replaced or abandoned re-index); missing is no error."""
        ...


@runtime_checkable
class LexicalIndex(Protocol):
    """One collection's keyword index, derived from the vector store and rebuilt from it.

    ``generation`` is the catalog generation it was last saved at (-1: missing or unreadable),
    which is how the document store knows it is in step.
    """

    generation: int

    @property
    def size(self) -> int:
        """Live chunks."""
        ...

    def add(self, chunk_ids: list[str], doc_ids: list[str], texts: list[str]) -> None: ...

    def remove_documents(self, doc_ids: set[str]) -> int:
        """Remove every chunk of these documents; returns how many were removed."""
        ...

    def clear(self) -> None: ...

    def search(
        self, query: str, k: int, allowed_doc_ids: set[str] | None = None
    ) -> list[tuple[str, str, float]]:
        """Top ``k`` as ``(chunk_id, doc_id, score)``, best first, only positive scores."""
        ...

    def save(self, generation: int) -> None:
        """Persist what was added and removed, durably, as of ``generation``."""
        ...
