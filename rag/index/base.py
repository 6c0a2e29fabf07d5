"""The ``Index`` contract that ingestion writes to and retrieval reads from."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from rag.types import Chunk, Document, Filters, Hit, StoredChunk


class Index(Protocol):
    """Dense + lexical index over chunks, partitioned by collection.

    Readers only ever see documents whose write completed: a new version of a document
    replaces the old one in one step, and a crash mid-write leaves no trace.
    """

    def write(self, document: Document, chunks: list[Chunk], vectors: npt.NDArray[np.float32]) -> bool:
        """Store a document; False when these exact bytes were already stored (no work done)."""
        ...

    def delete(self, doc_id: str) -> None: ...

    def dense(
        self, query_vec: npt.NDArray[np.float32], k: int, collection: str, filters: Filters | None = None
    ) -> list[Hit]: ...

    def lexical(self, query: str, k: int, collection: str, filters: Filters | None = None) -> list[Hit]: ...

    def get(self, chunk_ids: list[str]) -> list[StoredChunk]: ...

    def stats(self) -> dict[str, Any]: ...
