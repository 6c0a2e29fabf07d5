"""The composition root: every part of the embedded service built once from ``Settings``.

It lives in ``ingest`` because it wires ingestion and querying together, and the
dependency rule is ``api -> ingest -> rag`` (eval may use it too). Parts are built
lazily so a command only pays for what it uses (``rag documents`` loads no model).
"""

from __future__ import annotations

import os
from functools import cached_property
from typing import TYPE_CHECKING, Any

from rag.embedder import Embedder, get_embedder
from rag.index.hybrid import HybridIndex, open_index
from rag.settings import Settings

if TYPE_CHECKING:
    from ingest.chunking import Chunker
    from ingest.pipeline import IngestionPipeline


class Runtime:
    def __init__(self, settings: Settings, *, writer: bool = True) -> None:
        self.settings = settings
        self.writer = writer
        # Writes only; tesseract's OpenMP threads fight each other on small machines.
        os.environ.setdefault("OMP_THREAD_LIMIT", str(settings.ocr_thread_limit))

    @cached_property
    def index(self) -> HybridIndex:
        return open_index(self.settings, writer=self.writer)

    @cached_property
    def embedder(self) -> Embedder:
        s = self.settings
        return get_embedder(s.embedding_model, s.embedding_device, s.embedding_batch_size)

    @cached_property
    def chunker(self) -> Chunker:
        from ingest.chunking import Chunker

        return Chunker.from_settings(self.settings, self.embedder)

    @cached_property
    def ingestion(self) -> IngestionPipeline:
        from ingest.pipeline import IngestionPipeline

        return IngestionPipeline(self.settings, self.index, self.embedder, self.chunker)

    def close(self) -> None:
        if "index" in self.__dict__:
            self.index.close()

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
