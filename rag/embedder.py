"""Sentence-transformers embeddings: batched, normalised, one model load per process."""

from __future__ import annotations

import copy
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from rag.errors import ModelUnavailable
from rag.models import canonical_model_name, resolve_model
from rag.vectors import DEFAULT_BACKEND, EmbeddingSpec, tag

Matrix = npt.NDArray[np.float32]


@lru_cache(maxsize=4)
def _load_sentence_transformer(loadable: str, device: str) -> Any:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(loadable, device=device)


class Embedder:
    """The ``Embedder`` contract: ``embed(texts) -> matrix``, ``dim``, ``max_tokens``, ``spec``.

    ``cache_dir`` is where a model shipped in parts is joined and extracted (``rag.models``).
    Query vectors carry ``spec`` (``rag.vectors.tag``), so the index can tell which model made them.
    """

    backend = DEFAULT_BACKEND

    def __init__(
        self, model: str, *, device: str = "cpu", batch_size: int = 32, cache_dir: Path | None = None
    ) -> None:
        self.name = model
        self.loadable, self.origin = resolve_model(model, cache_dir)
        try:
            self._model = _load_sentence_transformer(self.loadable, device)
        except Exception as exc:  # any loader failure means "no model"
            raise ModelUnavailable(
                f"embedding model {model!r} could not be loaded from {self.origin} ({exc.__class__.__name__})"
            ) from exc
        self.batch_size = batch_size
        dimension = (
            getattr(self._model, "get_embedding_dimension", None)
            or self._model.get_sentence_embedding_dimension
        )
        self.dim: int = int(dimension())
        self.max_tokens: int = int(self._model.max_seq_length)
        self.spec = EmbeddingSpec(canonical_model_name(model), self.backend, self.dim)
        # Tokenizers keep per-call state and are not thread-safe; the chunker counts
        # tokens in a reader thread while this one embeds, so it gets its own copy.
        self._tokenizer = copy.deepcopy(self._model.tokenizer)
        self._lock = threading.Lock()
        self._count_lock = threading.Lock()

    def embed(self, texts: list[str]) -> Matrix:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        # torch releases the GIL; one inference at a time keeps memory flat under concurrency
        with self._lock:
            vectors = self._model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> Matrix:
        """One query's vector, tagged with this model's ``spec``."""
        return tag(self.embed([text])[0], self.spec)

    def count_tokens(self, text: str) -> int:
        """Length in the model's own tokens, including the special tokens it adds."""
        with self._count_lock:
            return len(self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        with self._count_lock:
            encoded = self._tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        return [len(ids) for ids in encoded]


def limit_threads(threads: int) -> None:
    """Cap torch's CPU threads for the whole process (its pool is process-wide).

    One thread measured about 2x faster than two on this 2-core machine under load, where the
    API's request threads, ingestion and tesseract children already compete for the cores.
    """
    import torch

    if threads > 0 and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


@lru_cache(maxsize=4)
def get_embedder(
    model: str, device: str = "cpu", batch_size: int = 32, cache_dir: Path | None = None
) -> Embedder:
    """One embedder per (model, device) per process."""
    return Embedder(model, device=device, batch_size=batch_size, cache_dir=cache_dir)
