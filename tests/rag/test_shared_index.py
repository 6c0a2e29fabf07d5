"""Several processes on shared engines: one PostgreSQL catalog and one `chroma run` server, each
process with its own data directory (its own lexical index), as API replicas and workers run."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rag.catalog import Catalog
from rag.db import PostgresDatabase
from rag.errors import JobCancelled
from rag.index.store import DocumentStore, open_store
from rag.settings import Settings
from tests.chroma_server import ChromaServer
from tests.rag.test_index import DOC_A1, DOC_A2, DOC_B, make_doc, write

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    with ChromaServer(tmp_path_factory.mktemp("chroma-shared")) as server:
        yield server


@pytest.fixture
def replicas(
    chroma_server: ChromaServer, pg_url: str, make_settings: Callable[..., Settings], tmp_path: Any
) -> Iterator[tuple[DocumentStore, DocumentStore]]:
    stores = [
        open_store(
            make_settings(data_dir=tmp_path / f"p{n}", chroma_url=chroma_server.url, database_url=pg_url)
        )
        for n in range(2)
    ]
    yield stores[0], stores[1]
    for store in stores:
        store.close()
    chroma_server.wipe()


def lexical_docs(store: DocumentStore, query: str) -> list[str]:
    return sorted({h.doc_id for h in store.lexical(query, 10, "default")})


def test_each_process_finds_what_another_wrote_and_forgets_what_another_removed(
    replicas: tuple[DocumentStore, DocumentStore], embedder: Any
) -> None:
    a, b = replicas
    assert a.shared and b.shared
    assert lexical_docs(b, "Eiffel Tower completed") == []
    write(a, embedder, "a1", "tower.txt", DOC_A1)
    assert lexical_docs(b, "Eiffel Tower completed") == ["a1"]  # caught up before the search
    assert [h.doc_id for h in b.dense(embedder.embed_query("Eiffel Tower"), 2, "default")] == ["a1", "a1"]

    write(b, embedder, "a2", "tower.txt", DOC_A2)  # a new version of the same name, from the other side
    write(b, embedder, "b1", "plants.txt", DOC_B)
    assert lexical_docs(a, "Eiffel Tower") == ["a2"]  # the replaced version is gone everywhere
    assert lexical_docs(b, "Eiffel Tower") == ["a2"]
    assert lexical_docs(a, "photosynthesis light energy") == ["b1"]

    a.delete("b1")
    assert lexical_docs(b, "photosynthesis light energy") == []
    assert a.catalog.generation("default") == b.catalog.generation("default")
    for store in (a, b):  # and each one's index, saved at that generation, reopens in step
        assert store.stats()["collections"]["default"]["consistent"]


def test_a_restarted_process_catches_up_from_its_own_saved_index(
    replicas: tuple[DocumentStore, DocumentStore], embedder: Any, make_settings: Callable[..., Settings]
) -> None:
    a, b = replicas
    write(a, embedder, "a1", "tower.txt", DOC_A1)
    assert lexical_docs(b, "Eiffel") == ["a1"]
    settings_b = b.settings
    b.close()
    write(a, embedder, "b1", "plants.txt", DOC_B)  # written while b was down
    b2 = open_store(settings_b)
    try:
        assert lexical_docs(b2, "photosynthesis") == ["b1"]
        assert lexical_docs(b2, "Eiffel") == ["a1"]
    finally:
        b2.close()


def test_a_document_deleted_while_it_is_written_is_not_switched_on(pg_url: str) -> None:
    """The version switch is one transaction that finds the document's row gone (another process
    deleted it mid-ingestion): it refuses, and the writer removes the chunks it added."""
    writer, other = Catalog(PostgresDatabase(pg_url, "catalog")), Catalog(PostgresDatabase(pg_url, "catalog"))
    doc, _ = make_doc("d1", "doc.txt", DOC_B)
    writer.begin_write(doc)
    assert other.remove("d1") is not None
    with pytest.raises(JobCancelled):
        writer.activate(doc)
    assert writer.get("d1") is None and writer.active_ids("default") == set()
