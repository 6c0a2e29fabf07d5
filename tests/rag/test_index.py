"""The index against real Chroma (embedded, and a ``chroma run`` server) and the real embedding model.

Contract tests, on the model of Haystack's DocumentStore test classes: each ``*Contract`` class is
a base of tests with an abstract fixture, and each implementation subclasses it once. A new
backend (PostgreSQL, a scale-out service) subclasses the same classes and must pass them all.

- ``IndexContract``: the document store (``rag.index.base.IndexReader`` and ``IndexWriter``),
  over embedded Chroma and over a Chroma server;
- ``VectorStoreContract``: ``rag.index.base.VectorStore`` (``ChromaStore``, embedded and server);
- ``LexicalIndexContract``: ``rag.index.base.LexicalIndex`` (``BM25Index``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rag.answering import QueryPipeline
from rag.errors import DataDirLocked, IndexUnavailable, JobCancelled, NotFound
from rag.index.base import DocumentWrite, IndexReader, IndexWriter, LexicalIndex, VectorStore
from rag.index.chroma_store import ADD_STEP, ChromaStore, make_client
from rag.index.lexical import BM25Index
from rag.index.store import DocumentStore, open_store
from rag.rerank.none import NoReranker
from rag.settings import Settings
from rag.types import Chunk, Document, chunk_id
from tests.chroma_server import ChromaServer

DOC_A1 = [
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris.",
    "It was designed by the engineering company of Gustave Eiffel.",
]
DOC_A2 = [
    "The Eiffel Tower was repainted in 2024 with a golden brown colour.",
    "Its height is now 330 metres including antennas.",
]
DOC_B = ["Photosynthesis converts light energy into chemical energy in plants."]


def make_doc(
    doc_id: str, name: str, sentences: list[str], collection: str = "default"
) -> tuple[Document, list[Chunk]]:
    doc = Document(
        id=doc_id,
        name=name,
        collection=collection,
        content_sha256=doc_id * 2,
        kind="text",
        size_bytes=100,
        pages=1,
        metadata={"lang": "en"},
    )
    chunks, offset = [], 0
    for i, text in enumerate(sentences):
        chunks.append(Chunk(chunk_id(doc_id, i), doc_id, i, text, 1, 1, offset, offset + len(text), 12))
        offset += len(text) + 1
    return doc, chunks


def write(
    index: IndexWriter,
    embedder: Any,
    doc_id: str,
    name: str,
    sentences: list[str],
    collection: str = "default",
) -> bool:
    doc, chunks = make_doc(doc_id, name, sentences, collection)
    return index.write(doc, chunks, embedder.embed([c.text for c in chunks]))


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """One server for the module's server-side contract tests, wiped between tests."""
    with ChromaServer(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


# --------------------------------------------------------------------------- the document store

StoreOpener = Callable[[], DocumentStore]


class IndexContract:
    """Both sides of the index contract, whatever holds the vectors."""

    @pytest.fixture
    def open_store(self) -> StoreOpener:
        """Opens the store under test (a writer) on the same data each time it is called."""
        raise NotImplementedError

    def test_it_is_both_sides_of_the_contract(self, open_store: StoreOpener) -> None:
        store = open_store()
        try:
            assert isinstance(store, IndexReader) and isinstance(store, IndexWriter)
            assert isinstance(store.vectors, VectorStore)
        finally:
            store.close()

    @pytest.mark.slow
    def test_write_search_replace_delete(self, open_store: StoreOpener, embedder: Any) -> None:
        index = open_store()
        try:
            assert write(index, embedder, "a1", "tower.txt", DOC_A1)
            assert write(index, embedder, "b", "plants.txt", DOC_B)
            assert index.stats()["collections"]["default"] == {
                "documents": 2,
                "chunks": 3,
                "chroma_chunks": 3,
                "lexical_chunks": 3,
                "documents_writing": 0,
                "generation": 2,
                "consistent": True,
                "embedding": {
                    "model": "sentence-transformers/all-MiniLM-L6-v2",
                    "backend": "torch",
                    "dim": 384,
                },
            }
            assert not write(index, embedder, "a1", "tower.txt", DOC_A1), "identical bytes must do nothing"

            q = embedder.embed_query("When was the Eiffel Tower completed?")
            dense = index.dense(q, 3, "default")
            assert dense[0].chunk_id == "a1:000000" and dense[0].rank == 1
            lexical = index.lexical("Eiffel Tower completed", 3, "default")
            assert lexical[0].chunk_id == "a1:000000"
            assert index.lexical("Eiffel", 5, "other-collection") == []
            assert index.dense(q, 5, "other-collection") == []

            # a new version of tower.txt replaces the old one on both sides
            assert write(index, embedder, "a2", "tower.txt", DOC_A2)
            docs = {d.id for d in index.catalog.documents("default")}
            assert docs == {"a2", "b"}
            assert {h.doc_id for h in index.dense(q, 10, "default")} == {"a2", "b"}
            assert {h.doc_id for h in index.lexical("Eiffel Tower", 10, "default")} == {"a2"}
            assert index.get(["a1:000000"]) == []
            stored = index.get(["a2:000001"])
            assert stored[0].document_name == "tower.txt" and "330 metres" in stored[0].chunk.text
            assert index.stats()["collections"]["default"]["consistent"]

            # filters apply to both sides
            assert {h.doc_id for h in index.dense(q, 10, "default", {"document_id": "b"})} == {"b"}
            assert index.lexical("Eiffel", 10, "default", {"document_id": ["b"]}) == []
            assert index.lexical("Eiffel", 10, "default", {"lang": "fr"}) == []

            index.delete("a2")
            with pytest.raises(NotFound):
                index.delete("a2")
            assert index.lexical("Eiffel", 10, "default") == []
            assert all(h.doc_id == "b" for h in index.dense(q, 10, "default"))
            assert index.vectors.count("default") == 1
        finally:
            index.close()

    @pytest.mark.slow
    def test_readers_never_see_both_versions_or_neither(self, open_store: StoreOpener, embedder: Any) -> None:
        index = open_store()
        versions = [DOC_A1, DOC_A2]
        vectors = [embedder.embed(v) for v in versions]
        write(index, embedder, "v0", "tower.txt", versions[0])
        seen: list[set[str]] = []
        stop = threading.Event()
        q = embedder.embed_query("Eiffel Tower")

        errors: list[BaseException] = []

        def reader() -> None:
            try:
                while not stop.is_set():
                    with index.consistent_read():
                        ids = {h.doc_id for h in index.dense(q, 10, "default")}
                        ids |= {h.doc_id for h in index.lexical("Eiffel Tower", 10, "default")}
                    seen.append(ids)
            except BaseException as exc:  # a reader that dies must fail the test, not just warn
                errors.append(exc)

        threads = [threading.Thread(target=reader) for _ in range(2)]
        for t in threads:
            t.start()
        try:
            for i in range(1, 9):
                doc, chunks = make_doc(f"v{i}", "tower.txt", versions[i % 2])
                index.write(doc, chunks, vectors[i % 2])
                time.sleep(0.02)
        finally:
            stop.set()
            for t in threads:
                t.join()
            index.close()
        assert not errors, errors
        assert seen and all(len(ids) == 1 for ids in seen), [s for s in seen if len(s) != 1][:3]

    def test_a_document_written_in_parts_is_seen_whole_and_only_after_its_commit(
        self, open_store: StoreOpener, embedder: Any
    ) -> None:
        index = open_store()
        try:
            sentences = [*DOC_A1, *DOC_A2, *DOC_B]
            doc, chunks = make_doc("parts", "parts.txt", sentences)
            vectors = embedder.embed(sentences)
            writing = index.begin(doc)
            assert isinstance(writing, DocumentWrite)
            q = embedder.embed_query("Eiffel Tower")
            for start in (0, 2, 4):
                writing.add(chunks[start : start + 2], vectors[start : start + 2])
                assert index.vectors.count("default") == min(start + 2, 5)  # stored as it goes
                assert index.dense(q, 10, "default") == [] and index.lexical("Eiffel", 10, "default") == []
                assert index.get([c.id for c in chunks]) == [] and index.catalog.documents("default") == []
                stats = index.stats()["collections"]["default"]
                assert stats["documents_writing"] == 1 and stats["consistent"], stats
            assert writing.commit()
            assert [s.chunk.id for s in index.get([c.id for c in chunks])] == [c.id for c in chunks]
            assert {h.doc_id for h in index.dense(q, 10, "default")} == {"parts"}
            stats = index.stats()["collections"]["default"]
            assert (stats["chunks"], stats["documents_writing"], stats["consistent"]) == (5, 0, True)
            again = index.begin(doc)  # the same bytes again: nothing to do
            again.add(chunks, vectors)
            assert not again.commit() and index.vectors.count("default") == 5
        finally:
            index.close()

    def test_an_aborted_write_leaves_no_trace_and_can_be_done_again(
        self, open_store: StoreOpener, embedder: Any
    ) -> None:
        index = open_store()
        try:
            write(index, embedder, "b", "plants.txt", DOC_B)
            doc, chunks = make_doc("a1", "tower.txt", DOC_A1)
            vectors = embedder.embed(DOC_A1)
            writing = index.begin(doc)
            writing.add(chunks[:1], vectors[:1])
            writing.abort()
            writing.abort()  # twice is harmless
            assert index.vectors.count("default") == 1 and index.catalog.get("a1") is None
            assert index.stats()["collections"]["default"]["consistent"]
            assert write(index, embedder, "a1", "tower.txt", DOC_A1)
            assert index.vectors.count("default") == 3
        finally:
            index.close()

    def test_a_document_deleted_while_it_is_written_is_cancelled_and_removed(
        self, open_store: StoreOpener, embedder: Any
    ) -> None:
        index = open_store()
        try:
            sentences = [*DOC_A1, *DOC_A2]
            doc, chunks = make_doc("gone", "gone.txt", sentences)
            vectors = embedder.embed(sentences)
            writing = index.begin(doc)
            writing.add(chunks[:2], vectors[:2])
            index.delete("gone")  # as DELETE /v1/documents/{id} does while its job runs
            with pytest.raises(JobCancelled):
                writing.add(chunks[2:], vectors[2:])
            writing.abort()
            assert index.vectors.count("default") == 0 and index.catalog.get("gone") is None

            writing = index.begin(doc)  # deleted between the last batch and the switch
            writing.add(chunks, vectors)
            index.delete("gone")
            with pytest.raises(JobCancelled):
                writing.commit()
            assert index.vectors.count("default") == 0 and index.catalog.get("gone") is None
        finally:
            index.close()

    def test_a_second_write_of_the_same_document_waits_for_the_first(
        self, open_store: StoreOpener, embedder: Any
    ) -> None:
        index = open_store()
        try:
            doc, chunks = make_doc("a1", "tower.txt", DOC_A1)
            vectors = embedder.embed(DOC_A1)
            first = index.begin(doc)
            first.add(chunks, vectors)
            outcome: list[bool] = []
            second = threading.Thread(
                target=lambda: outcome.append(write(index, embedder, "a1", "tower.txt", DOC_A1))
            )
            second.start()
            second.join(timeout=1.0)
            assert second.is_alive() and outcome == [], "the second write must wait for the first"
            assert first.commit()
            second.join(timeout=30)
            assert outcome == [False] and index.vectors.count("default") == 2
        finally:
            index.close()

    def test_a_write_cut_off_before_its_commit_is_undone_on_reopen(
        self, open_store: StoreOpener, embedder: Any
    ) -> None:
        index = open_store()
        write(index, embedder, "b", "plants.txt", DOC_B)
        doc, chunks = make_doc("a1", "tower.txt", DOC_A1)
        index.begin(doc).add(chunks, embedder.embed(DOC_A1))  # the process dies here
        index.close()
        index = open_store()  # a writer recovers as it opens
        try:
            assert index.vectors.count("default") == 1 and index.catalog.get("a1") is None
            assert index.stats()["collections"]["default"]["consistent"]
        finally:
            index.close()

    @pytest.mark.slow
    def test_what_was_written_survives_a_reopen(self, open_store: StoreOpener, embedder: Any) -> None:
        index = open_store()
        write(index, embedder, "a1", "tower.txt", DOC_A1)
        write(index, embedder, "b", "plants.txt", DOC_B, collection="botany")
        index.close()
        index = open_store()
        try:
            assert index.recover() == {
                "discarded": [],
                "orphan_chunks": 0,
                "rebuilt": [],
                "dropped_vector_sets": [],
                "recorded": [],
            }
            assert index.lexical("photosynthesis", 1, "botany")[0].doc_id == "b"
            assert index.lexical("photosynthesis", 1, "default") == []
            q = embedder.embed_query("Eiffel Tower")
            assert [h.doc_id for h in index.dense(q, 5, "default")] == ["a1", "a1"]
            assert all(c["consistent"] for c in index.stats()["collections"].values())
        finally:
            index.close()


class TestEmbeddedChromaStore(IndexContract):
    @pytest.fixture
    def open_store(self, settings: Settings) -> StoreOpener:
        return lambda: open_store(settings)

    @pytest.mark.slow
    def test_lexical_side_persists_and_rebuilds_from_chroma(self, settings: Settings, embedder: Any) -> None:
        index = open_store(settings)
        write(index, embedder, "a1", "tower.txt", DOC_A1)
        write(index, embedder, "b", "plants.txt", DOC_B)
        index.close()

        index = open_store(settings)  # persisted: nothing to rebuild
        assert index.recover()["rebuilt"] == []
        assert index.lexical("photosynthesis", 1, "default")[0].doc_id == "b"
        index.close()

        shutil.rmtree(settings.lexical_dir)  # missing: rebuilt from Chroma at start-up
        index = open_store(settings)
        assert index.stats()["collections"]["default"]["lexical_chunks"] == 3
        assert index.lexical("photosynthesis", 1, "default")[0].doc_id == "b"
        index.close()

        # out of step: a manifest from an older generation is replaced by a rebuild
        lex_dir = next(settings.lexical_dir.iterdir())
        manifest = json.loads((lex_dir / "manifest.json").read_text())
        manifest["generation"] = 0
        (lex_dir / "manifest.json").write_text(json.dumps(manifest))
        index = open_store(settings)
        assert BM25Index.load(lex_dir).generation == index.catalog.generation("default")
        assert index.stats()["collections"]["default"]["consistent"]
        index.close()

    @pytest.mark.slow
    def test_warm_loads_every_collection_before_the_first_question(
        self, settings: Settings, embedder: Any
    ) -> None:
        index = open_store(settings)
        write(index, embedder, "a1", "tower.txt", DOC_A1)
        write(index, embedder, "b", "plants.txt", DOC_B, collection="botany")
        index.close()
        replica = open_store(settings, writer=False)
        try:
            assert sorted(replica.warm()) == ["botany", "default"]
            shutil.rmtree(settings.lexical_dir)  # what a question reads now comes from memory
            assert replica.lexical("photosynthesis", 1, "botany")[0].doc_id == "b"
            assert replica.lexical("Eiffel", 1, "default")[0].doc_id == "a1"
        finally:
            replica.close()

    def test_second_writer_gets_a_clear_error(self, settings: Settings) -> None:
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys,time; from pathlib import Path; from rag.index.lock import WriterLock; "
                "l=WriterLock(Path(sys.argv[1])); l.acquire(); print('locked', flush=True); time.sleep(60)",
                str(settings.data_dir),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
            with pytest.raises(DataDirLocked) as err:
                open_store(settings)
            assert err.value.code == "data_dir_locked"
            assert f"pid {holder.pid}" in err.value.message
        finally:
            holder.kill()
            holder.wait()
        open_store(settings).close()  # the OS released the dead holder's lock


@pytest.mark.slow
class TestChromaServerStore(IndexContract):
    @pytest.fixture
    def open_store(
        self, chroma_server: ChromaServer, make_settings: Callable[..., Settings]
    ) -> Iterator[StoreOpener]:
        settings = make_settings(chroma_url=chroma_server.url)
        yield lambda: open_store(settings)
        chroma_server.wipe()

    def test_the_http_client_writes_nothing_locally(
        self, open_store: StoreOpener, settings: Settings, embedder: Any
    ) -> None:
        index = open_store()
        assert index.stats()["backend"] == "chroma-http"
        write(index, embedder, "a1", "tower.txt", DOC_A1)
        write(index, embedder, "a2", "tower.txt", DOC_A2)
        hits = index.dense(embedder.embed_query("Eiffel Tower height"), 5, "default")
        assert [h.doc_id for h in hits] == ["a2", "a2"]
        assert index.stats()["collections"]["default"]["consistent"]
        index.close()
        assert not (settings.data_dir / "chroma").exists(), "the HTTP client must not write locally"

    def test_a_server_that_goes_away_answers_index_unavailable(
        self, tmp_path: Path, make_settings: Callable[..., Settings], embedder: Any
    ) -> None:
        with ChromaServer(tmp_path / "doomed") as server:
            settings = make_settings(chroma_url=server.url)
            store = open_store(settings)
            try:
                write(store, embedder, "a1", "tower.txt", DOC_A1)
                pipeline = QueryPipeline(settings, store, embedder, NoReranker(), None)
                assert pipeline.search("When was the Eiffel Tower completed?", k=2).results
                server.kill()
                with pytest.raises(IndexUnavailable) as err:
                    pipeline.search("When was the Eiffel Tower completed?", k=2)
                assert err.value.code == "index_unavailable" and err.value.status == 503
                assert "Chroma could not" in err.value.message
                with pytest.raises(IndexUnavailable):
                    store.get(["a1:000000"])
                with pytest.raises(IndexUnavailable):
                    store.dense(embedder.embed_query("Eiffel"), 3, "a-collection-never-opened")
                with pytest.raises(IndexUnavailable):
                    write(store, embedder, "b", "plants.txt", DOC_B)
            finally:
                store.close()


# --------------------------------------------------------------------------- the vector store

UNIT = np.eye(4, dtype=np.float32)


class VectorStoreContract:
    """``rag.index.base.VectorStore``: chunks, vectors and metadata per collection."""

    @pytest.fixture
    def vectors(self) -> VectorStore:
        """An empty vector store."""
        raise NotImplementedError

    def _add(self, vectors: VectorStore, doc_id: str, rows: list[int], collection: str = "c1") -> None:
        doc, chunks = make_doc(
            doc_id, f"{doc_id}.txt", [f"text {doc_id} {n}" for n in range(len(rows))], collection
        )
        vectors.add(doc, chunks, UNIT[rows])

    def test_it_is_a_vector_store(self, vectors: VectorStore) -> None:
        assert isinstance(vectors, VectorStore)

    def test_a_collection_never_written_reads_as_empty(self, vectors: VectorStore) -> None:
        assert vectors.query("nothing-here", UNIT[0], 5, None) == []
        assert vectors.get("nothing-here", ["x:000000"]) == []
        assert vectors.count("nothing-here") == 0
        assert list(vectors.scan("nothing-here")) == []
        vectors.delete_documents("nothing-here", ["x"])  # nothing to do, no error

    def test_add_query_get_scan_delete(self, vectors: VectorStore) -> None:
        self._add(vectors, "a", [0, 1])
        self._add(vectors, "b", [2])
        self._add(vectors, "z", [0], collection="c2")
        assert vectors.count("c1") == 3 and vectors.count("c2") == 1

        best = vectors.query("c1", UNIT[1], 2, None)
        assert best[0][:2] == ("a:000001", "a")
        assert best[0][2] == pytest.approx(1.0, abs=1e-5) and best[1][2] == pytest.approx(0.0, abs=1e-5)
        assert len(vectors.query("c1", UNIT[1], 10, None)) == 3  # k larger than the collection
        only_b = vectors.query("c1", UNIT[1], 5, ["b"])
        assert [did for _, did, _ in only_b] == ["b"]

        (row,) = vectors.get("c1", ["a:000001"])
        cid, text, meta = row
        assert (cid, text) == ("a:000001", "text a 1")
        assert meta["doc_id"] == "a" and meta["ordinal"] == 1 and meta["page_start"] == 1
        assert {"page_end", "char_start", "char_end", "token_count"} <= set(meta)
        assert {r[0] for r in vectors.get("c1", ["b:000000", "missing:000000"])} == {"b:000000"}

        scanned = {cid: (text, meta["doc_id"]) for cid, text, meta in vectors.scan("c1")}
        assert scanned == {
            "a:000000": ("text a 0", "a"),
            "a:000001": ("text a 1", "a"),
            "b:000000": ("text b 0", "b"),
        }
        assert {text for _, text, _ in vectors.scan("c1", with_text=False)} <= {""}

        vectors.delete_documents("c1", ["a"])
        assert vectors.count("c1") == 1 and vectors.count("c2") == 1
        assert [did for _, did, _ in vectors.query("c1", UNIT[0], 5, None)] == ["b"]

    def test_a_document_longer_than_one_write_step_is_stored_whole(self, vectors: VectorStore) -> None:
        """Long documents go to Chroma in steps (an embedded ``add`` holds the GIL while it runs)."""
        n = ADD_STEP * 2 + 3
        doc, chunks = make_doc("long", "long.txt", [f"text {i}" for i in range(n)], "c1")
        unit = np.random.default_rng(7).normal(size=(n, 8)).astype(np.float32)
        unit /= np.linalg.norm(unit, axis=1, keepdims=True)
        vectors.add(doc, chunks, unit)
        assert vectors.count("c1") == n
        assert vectors.query("c1", unit[-1], 1, None)[0][0] == f"long:{n - 1:06d}"
        rows = vectors.get("c1", [c.id for c in chunks])
        assert sorted(cid for cid, _, _ in rows) == [c.id for c in chunks]
        vectors.put("c1/new", rows, unit)
        assert vectors.count("c1/new") == n

    def test_put_dimension_drop(self, vectors: VectorStore) -> None:
        """What a re-index needs: rows copied with new vectors, their width, a whole collection dropped."""
        assert vectors.dimension("c1") is None
        self._add(vectors, "a", [0, 1])
        assert vectors.dimension("c1") == 4
        rows = vectors.get("c1", ["a:000000", "a:000001"])
        wide = np.eye(6, dtype=np.float32)[[4, 5]]
        vectors.put("c1/new", rows, wide)
        assert vectors.dimension("c1/new") == 6
        assert vectors.get("c1/new", ["a:000000", "a:000001"]) == rows  # text and metadata untouched
        assert [cid for cid, _, _ in vectors.query("c1/new", wide[1], 1, None)] == ["a:000001"]
        vectors.drop("c1")
        assert vectors.count("c1") == 0 and vectors.query("c1", UNIT[0], 5, None) == []
        assert vectors.count("c1/new") == 2
        vectors.drop("never-written")  # nothing to do, no error


class TestEmbeddedChroma(VectorStoreContract):
    @pytest.fixture
    def vectors(self, settings: Settings) -> VectorStore:
        return ChromaStore(make_client(settings))


@pytest.mark.slow
class TestChromaServer(VectorStoreContract):
    @pytest.fixture
    def vectors(
        self, chroma_server: ChromaServer, make_settings: Callable[..., Settings]
    ) -> Iterator[VectorStore]:
        yield ChromaStore(make_client(make_settings(chroma_url=chroma_server.url)))
        chroma_server.wipe()


# --------------------------------------------------------------------------- the lexical index


class LexicalIndexContract:
    """``rag.index.base.LexicalIndex``: one collection's keyword index, saved at a generation."""

    @pytest.fixture
    def make_lexical(self) -> Callable[[], LexicalIndex]:
        """Opens the index under test as last saved (empty, generation -1, before any save)."""
        raise NotImplementedError

    def _fill(self, lex: LexicalIndex) -> None:
        lex.add(["a:0", "a:1"], ["a", "a"], DOC_A1)
        lex.add(["b:0"], ["b"], DOC_B)

    def test_it_is_a_lexical_index(self, make_lexical: Callable[[], LexicalIndex]) -> None:
        lex = make_lexical()
        assert isinstance(lex, LexicalIndex)
        assert lex.size == 0 and lex.search("Eiffel", 5) == []

    def test_add_search_remove_clear(self, make_lexical: Callable[[], LexicalIndex]) -> None:
        lex = make_lexical()
        self._fill(lex)
        assert lex.size == 3
        found = lex.search("Eiffel Tower completed", 5)
        assert found[0][:2] == ("a:0", "a")
        assert all(score > 0 for _, _, score in found)
        assert [s for _, _, s in found] == sorted((s for _, _, s in found), reverse=True)
        assert len(lex.search("Eiffel Tower engineering", 1)) == 1
        assert lex.search("Eiffel", 5, allowed_doc_ids={"b"}) == []
        assert lex.search("zeppelin", 5) == []
        assert lex.remove_documents({"a"}) == 2
        assert lex.size == 1 and lex.search("Eiffel", 5) == []
        assert lex.search("photosynthesis", 5)[0][:2] == ("b:0", "b")
        lex.clear()
        assert lex.size == 0 and lex.search("photosynthesis", 5) == []

    def test_save_and_reopen(self, make_lexical: Callable[[], LexicalIndex]) -> None:
        lex = make_lexical()
        assert lex.generation == -1
        self._fill(lex)
        lex.save(1)
        assert lex.generation == 1
        before = lex.search("Eiffel Tower", 5)
        again = make_lexical()
        assert again.generation == 1 and again.size == 3
        assert again.search("Eiffel Tower", 5) == before
        again.remove_documents({"b"})
        again.save(2)
        third = make_lexical()
        assert third.generation == 2 and third.size == 2 and third.search("photosynthesis", 5) == []


class TestBM25Index(LexicalIndexContract):
    @pytest.fixture
    def make_lexical(self, tmp_path: Path) -> Callable[[], LexicalIndex]:
        return lambda: BM25Index.load(tmp_path / "lexical")

    def test_lexical_matches_rank_bm25_on_squad(self, datasets: Path) -> None:
        """rank-bm25 is the reference; our engine must rank the same documents at the top."""
        from rank_bm25 import BM25Okapi

        from rag.index.analyzer import analyze

        data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
        texts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
        questions = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]][::20]
        index = BM25Index()
        for start in range(0, len(texts), 25):  # many segments, as real ingestion makes
            ids = [str(i) for i in range(start, min(start + 25, len(texts)))]
            index.add(ids, ids, texts[start : start + 25])
        reference = BM25Okapi([analyze(t) for t in texts])
        overlaps = []
        for question in questions:
            ours = {cid for cid, _, _ in index.search(question, 10)}
            scores = reference.get_scores(analyze(question))
            theirs = {str(i) for i in np.argsort(-scores)[:10]}
            overlaps.append(len(ours & theirs) / 10)
        assert len(overlaps) > 250
        assert float(np.mean(overlaps)) >= 0.9
