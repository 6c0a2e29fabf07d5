"""Each collection served with its own embedding model.

A collection records the model its vectors were made with (``rag.catalog``), and the index
refuses a query or a write through any other (``EmbeddingModelMismatch``). So the service does
not embed with one model for everything: ``RAG_EMBEDDING_MODEL`` is the model of new collections
(and of collections recorded before records existed), and a collection re-indexed with another
model (``rag reindex``) is queried and written with that one from the moment it switches, in
this process and in every other, without a restart or a configuration change.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from rag.embedder import BACKENDS
from rag.errors import ModelUnavailable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from rag.embedder import Embedder
    from rag.index.store import DocumentStore
    from rag.settings import Settings

__all__ = ["CollectionEmbedders"]


class CollectionEmbedders:
    """The query side's embedder: a question is embedded with its collection's model.

    ``for_collection`` is the embedder of one collection. ``embed_query`` (the
    ``rag.retrieval.QueryEmbedder`` contract, which names no collection) uses the default
    collection's (``RAG_DEFAULT_COLLECTION``) model: exact for the default collection; a query on
    another collection indexed with another model gets ``EmbeddingModelMismatch`` from the index
    until retrieval asks ``for_collection``.
    """

    def __init__(
        self,
        settings: Settings,
        store: Callable[[], DocumentStore],
        load: Callable[[str, str], Embedder],
    ) -> None:
        """``store``: the index (opened on first use); ``load``: a model and backend to its (shared) embedder."""
        self.settings = settings
        self._store = store
        self._load = load

    def model_for(self, collection: str | None) -> tuple[str, str]:
        """The model and backend ``collection`` is served with: its record's, else the configured ones."""
        record = self._store().embedding(collection or self.settings.default_collection)
        if record is None:
            return self.settings.embedding_model, self.settings.embedding_backend
        if record.spec.backend not in BACKENDS:
            raise ModelUnavailable(
                f"collection {record.collection!r} is indexed with the {record.spec.backend} backend,"
                f" which this service does not run"
            )
        return record.spec.model, record.spec.backend

    def for_collection(self, collection: str | None) -> Embedder:
        return self._load(*self.model_for(collection))

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        return self.for_collection(self.settings.default_collection).embed_query(text)
