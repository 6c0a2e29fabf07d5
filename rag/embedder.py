"""Embedders: the contract, the sentence-transformers one on torch, and the factory by backend.

``RAG_EMBEDDING_BACKEND`` picks the runtime: ``torch`` (sentence-transformers), ``onnx`` and
``onnx-int8`` (the same model exported to ONNX, optionally quantised, on onnxruntime:
``rag.onnx_embedder``). Every collection records the backend its vectors were made with.
"""

from __future__ import annotations

import copy
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

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


BACKENDS = (DEFAULT_BACKEND, "onnx", "onnx-int8")


class Embedder(Protocol):
    """Texts to unit vectors of one model; the chunker measures chunks in the model's tokens.

    ``name``: the model as configured; ``spec``: model, backend and width, carried by query
    vectors (``rag.vectors.tag``) so the index can tell which model and runtime made them.
    """

    name: str
    dim: int
    max_tokens: int
    spec: EmbeddingSpec

    def embed(self, texts: list[str]) -> Matrix: ...

    def embed_query(self, text: str) -> Matrix: ...

    def count_tokens(self, text: str) -> int: ...

    def count_tokens_batch(self, texts: list[str]) -> list[int]: ...


class TorchEmbedder:
    """sentence-transformers on torch: the reference the other backends are measured against.

    ``cache_dir`` is where a model shipped in parts is joined and extracted (``rag.models``).
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


@lru_cache(maxsize=6)
def get_embedder(
    model: str,
    device: str = "cpu",
    batch_size: int = 32,
    cache_dir: Path | None = None,
    backend: str = DEFAULT_BACKEND,
    threads: int = 1,
) -> Embedder:
    """One embedder per (model, backend, device) per process."""
    if backend == DEFAULT_BACKEND:
        return TorchEmbedder(model, device=device, batch_size=batch_size, cache_dir=cache_dir)
    if backend in BACKENDS:
        from rag.onnx_embedder import OnnxEmbedder

        return OnnxEmbedder(
            model, backend=backend, batch_size=batch_size, cache_dir=cache_dir, threads=threads
        )
    raise ModelUnavailable(f"no embedding backend {backend!r} (one of {', '.join(BACKENDS)})")
