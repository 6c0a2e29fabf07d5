"""Embeddings remembered across evaluation runs, keyed by model and exact text.

An ablation ingests the same documents once per configuration; most configurations change
only some chunks (tables rewrite table pages, headers change the lexical text only), so
re-embedding identical text would make the measurement cost hours instead of minutes on two
cores. The vectors are the model's own: a cached vector is the one the model gave this exact
text before, so results are the same as without the cache.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np
import numpy.typing as npt

from rag.db import connect
from rag.embedder import Embedder
from rag.vectors import DEFAULT_BACKEND

Matrix = npt.NDArray[np.float32]


class CachedEmbedder:
    """The same embedder, looking each text up before asking the model (``embed`` only)."""

    def __init__(self, inner: Embedder, path: Path) -> None:
        self._inner = inner
        self.name, self.dim, self.max_tokens, self.spec = inner.name, inner.dim, inner.max_tokens, inner.spec
        self._cache_lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db: sqlite3.Connection = connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        self.hits = 0
        self.misses = 0

    def _key(self, text: str) -> str:
        # torch's keys name the model only: they were written before there were other backends
        backend = self.spec.backend
        model = self._inner.name if backend == DEFAULT_BACKEND else f"{self._inner.name}|{backend}"
        return hashlib.sha256(f"{model}\0{text}".encode()).hexdigest()

    def embed_query(self, text: str) -> Matrix:
        return self._inner.embed_query(text)

    def count_tokens(self, text: str) -> int:
        return self._inner.count_tokens(text)

    def count_tokens_batch(self, texts: list[str]) -> list[int]:
        return self._inner.count_tokens_batch(texts)

    def embed(self, texts: list[str]) -> Matrix:
        keys = [self._key(t) for t in texts]
        with self._cache_lock:
            found = self._lookup(keys)
        missing = [i for i, k in enumerate(keys) if k not in found]
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            fresh = self._inner.embed([texts[i] for i in missing])
            with self._cache_lock:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                    [
                        (keys[i], np.asarray(v, dtype=np.float32).tobytes())
                        for i, v in zip(missing, fresh, strict=True)
                    ],
                )
                self._db.execute("COMMIT")
            found |= {keys[i]: np.asarray(v, dtype=np.float32) for i, v in zip(missing, fresh, strict=True)}
        if not texts:
            return np.zeros((0, int(self._inner.dim)), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32)

    def _lookup(self, keys: list[str]) -> dict[str, Matrix]:
        found: dict[str, Matrix] = {}
        for start in range(0, len(keys), 500):
            batch = keys[start : start + 500]
            marks = ",".join("?" * len(batch))
            for key, blob in self._db.execute(
                f"SELECT key, vector FROM vectors WHERE key IN ({marks})", batch
            ):
                found[key] = np.frombuffer(blob, dtype=np.float32)
        return found

    def close(self) -> None:
        self._db.close()
