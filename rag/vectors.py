"""Which embedding model made a vector: what a collection records and a query vector carries.

Vectors of two models live in unrelated spaces: a cosine between them is a number, never an
answer. So every collection records the :class:`EmbeddingSpec` its vectors were made with
(``rag.catalog``), and every query embedding made by ``rag.embedder.Embedder`` carries its
own (:func:`tag`), so the document store can refuse a query or a write through another model
(``rag.errors.EmbeddingModelMismatch``) instead of returning nonsense. A vector that carries
no spec (made elsewhere) is checked by its dimension alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["DEFAULT_BACKEND", "EmbeddingSpec", "QueryVector", "spec_of", "tag"]

DEFAULT_BACKEND = "torch"
"""The inference backend of ``rag.embedder.Embedder`` (sentence-transformers on torch)."""


@dataclass(frozen=True, slots=True)
class EmbeddingSpec:
    """An embedding model as far as its vectors are concerned.

    ``model`` is the canonical name (``rag.models.canonical_model_name``: a hub name for an
    installed bundle, an absolute path for a local model); ``backend`` the inference runtime
    (``torch``; two backends of one model may differ in the last digits, and are recorded so a
    change is deliberate); ``dim`` the vector width.
    """

    model: str
    backend: str
    dim: int

    def same_model(self, other: EmbeddingSpec) -> bool:
        return self.model == other.model and self.backend == other.backend

    def matches(self, other: EmbeddingSpec) -> bool:
        return self.same_model(other) and self.dim == other.dim

    def describe(self) -> str:
        return f"{self.model} ({self.backend}, {self.dim} dims)"


class QueryVector(np.ndarray[Any, np.dtype[np.float32]]):
    """A query embedding that knows which model made it; otherwise a plain float32 vector."""

    spec: EmbeddingSpec | None

    def __array_finalize__(self, obj: Any) -> None:
        self.spec = getattr(obj, "spec", None)


def tag(vector: npt.NDArray[np.float32], spec: EmbeddingSpec) -> npt.NDArray[np.float32]:
    """``vector`` as a :class:`QueryVector` carrying ``spec`` (no copy)."""
    tagged = np.asarray(vector, dtype=np.float32).view(QueryVector)
    tagged.spec = spec
    return tagged


def spec_of(vector: object) -> EmbeddingSpec | None:
    """The spec a query vector carries, or ``None`` for a vector made elsewhere."""
    spec = getattr(vector, "spec", None)
    return spec if isinstance(spec, EmbeddingSpec) else None
