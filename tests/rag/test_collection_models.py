"""Each collection records its embedding model; another model's query or write is refused.

Real Chroma, the real MiniLM model and a real (tiny, random) second model: vectors of two
models must never meet in one search.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.answering import QueryPipeline
from rag.embedder import get_embedder
from rag.errors import EmbeddingModelMismatch
from rag.index.store import open_store
from rag.rerank.none import NoReranker
from rag.settings import Settings
from rag.vectors import EmbeddingSpec
from service.runtime import Runtime
from tests.rag.test_index import DOC_A1, DOC_B, make_doc, write

MINILM = EmbeddingSpec("sentence-transformers/all-MiniLM-L6-v2", "torch", 384)


@pytest.fixture
def tiny(tiny_embedding_model: str) -> Any:
    return get_embedder(tiny_embedding_model)


def test_the_first_write_records_the_collection_model(settings: Settings, embedder: Any) -> None:
    store = open_store(settings)
    write(store, embedder, "a1", "tower.txt", DOC_A1)
    record = store.embedding("default")
    assert record is not None and record.spec == MINILM and record.physical == "default"
    assert store.stats()["collections"]["default"]["embedding"] == {
        "model": MINILM.model,
        "backend": "torch",
        "dim": 384,
    }
    assert store.embedding("never-written") is None
    assert store.dense(embedder.embed_query("tower"), 5, "never-written") == []
    store.close()


def test_a_query_through_another_model_is_refused(settings: Settings, embedder: Any, tiny: Any) -> None:
    store = open_store(settings)
    write(store, embedder, "a1", "tower.txt", DOC_A1)
    with pytest.raises(EmbeddingModelMismatch) as caught:
        store.dense(tiny.embed_query("When was the tower completed?"), 5, "default")
    assert caught.value.code == "embedding_model_mismatch" and caught.value.status == 409
    assert MINILM.model in caught.value.message and "rag reindex" in caught.value.message
    assert caught.value.to_dict()["embedded_with"] == tiny.spec.describe()

    # a vector made elsewhere is judged by its width
    with pytest.raises(EmbeddingModelMismatch):
        store.dense(np.ones(tiny.dim, dtype=np.float32), 5, "default")
    assert store.dense(embedder.embed(["When was the tower completed?"])[0], 5, "default")

    # through the query pipeline the error reaches the caller as it is
    pipeline = QueryPipeline(settings, store, tiny, NoReranker(), None)
    with pytest.raises(EmbeddingModelMismatch):
        pipeline.search("When was the tower completed?")
    assert QueryPipeline(settings, store, embedder, NoReranker(), None).search(
        "When was the tower completed?"
    )
    store.close()


def test_a_write_through_another_model_is_refused(settings: Settings, embedder: Any, tiny: Any) -> None:
    store = open_store(settings)
    write(store, embedder, "a1", "tower.txt", DOC_A1)
    doc, chunks = make_doc("b1", "plants.txt", DOC_B)
    with pytest.raises(EmbeddingModelMismatch):  # the configured model's width is not this
        store.write(doc, chunks, tiny.embed([c.text for c in chunks]))
    with pytest.raises(EmbeddingModelMismatch):  # said to be made by the tiny model
        store.writer_for(tiny.spec).write(doc, chunks, tiny.embed([c.text for c in chunks]))
    assert store.catalog.get("b1") is None  # refused before anything was written

    # a collection left without documents takes the model of its next write
    store.delete("a1")
    assert store.writer_for(tiny.spec).write(doc, chunks, tiny.embed([c.text for c in chunks]))
    record = store.embedding("default")
    assert record is not None and record.spec == tiny.spec
    store.close()


def test_a_catalog_from_before_model_records_is_recorded_on_open(settings: Settings, embedder: Any) -> None:
    store = open_store(settings)
    write(store, embedder, "a1", "tower.txt", DOC_A1)
    store.close()
    with sqlite3.connect(settings.catalog_path) as conn:  # the catalog as the previous version left it
        conn.execute("DROP TABLE collection_embeddings")
        conn.execute("DROP TABLE vector_sets")
        conn.execute("DROP TABLE schema_migrations")  # it predates migrations too

    reader = open_store(settings, writer=False)  # a reader writes nothing, but knows the model
    assert reader.catalog.embedding("default") is None
    record = reader.embedding("default")
    assert record is not None and record.spec == MINILM
    assert reader.dense(embedder.embed_query("When was the tower completed?"), 5, "default")
    reader.close()

    store = open_store(settings)  # the writer records it: the configured model, the stored width
    record = store.catalog.embedding("default")
    assert record is not None and record.spec == MINILM and record.physical == "default"
    store.close()


def _text(path: Path, body: str) -> Path:
    path.write_text(body, encoding="utf-8")
    return path


def test_the_runtime_serves_each_collection_with_its_own_model(
    make_settings: Any, tiny_embedding_model: str, tmp_path: Path
) -> None:
    tower = _text(tmp_path / "tower.txt", " ".join(DOC_A1))
    plants = _text(tmp_path / "plants.txt", " ".join(DOC_B))
    settings = make_settings()
    with Runtime(settings) as rt:
        rt.ingestion.ingest_file(tower)  # the default collection, with MiniLM

    # the service now configured with another model: the collection keeps being served with its own
    switched = make_settings(embedding_model=tiny_embedding_model)
    with Runtime(switched) as rt:
        hits = rt.query.search("When was the Eiffel Tower completed?").results
        assert hits and hits[0].document_name == "tower.txt"
        with pytest.raises(EmbeddingModelMismatch):  # the configured model's pipeline, bound to it
            rt.ingestion.ingest_file(plants)
        assert not rt.ingestion_for(None).ingest_file(plants).duplicate  # the collection's model
        rt.ingestion.ingest_file(plants, collection="fresh")  # a new collection: the configured model
        fresh = rt.index.embedding("fresh")
        assert fresh is not None and fresh.spec == rt.embedder.spec
        default = rt.index.embedding("default")
        assert default is not None and default.spec == MINILM
