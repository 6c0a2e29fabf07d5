"""The hybrid index against a real embedded Chroma and the real embedding model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from rag.errors import DataDirLocked, NotFound
from rag.index.hybrid import open_index
from rag.index.lexical import LexicalIndex
from rag.types import Chunk, Document, chunk_id

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


def write(index, embedder, doc_id, name, sentences, collection="default"):  # type: ignore[no-untyped-def]
    doc, chunks = make_doc(doc_id, name, sentences, collection)
    return index.write(doc, chunks, embedder.embed([c.text for c in chunks]))


@pytest.mark.slow
def test_write_search_replace_delete(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    index = open_index(settings)
    try:
        assert write(index, embedder, "a1", "tower.txt", DOC_A1)
        assert write(index, embedder, "b", "plants.txt", DOC_B)
        assert index.stats()["collections"]["default"] == {
            "documents": 2,
            "chunks": 3,
            "chroma_chunks": 3,
            "lexical_chunks": 3,
            "generation": 2,
            "consistent": True,
        }
        assert not write(index, embedder, "a1", "tower.txt", DOC_A1), "identical bytes must do nothing"

        q = embedder.embed_query("When was the Eiffel Tower completed?")
        dense = index.dense(q, 3, "default")
        assert dense[0].chunk_id == "a1:000000" and dense[0].rank == 1
        lexical = index.lexical("Eiffel Tower completed", 3, "default")
        assert lexical[0].chunk_id == "a1:000000"
        assert index.lexical("Eiffel", 5, "other-collection") == []

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
        assert index.store.count("default") == 1
    finally:
        index.close()


@pytest.mark.slow
def test_lexical_side_persists_and_rebuilds_from_chroma(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    index = open_index(settings)
    write(index, embedder, "a1", "tower.txt", DOC_A1)
    write(index, embedder, "b", "plants.txt", DOC_B)
    index.close()

    index = open_index(settings)  # persisted: nothing to rebuild
    assert index.recover()["rebuilt"] == []
    assert index.lexical("photosynthesis", 1, "default")[0].doc_id == "b"
    index.close()

    shutil.rmtree(settings.lexical_dir)  # missing: rebuilt from Chroma at start-up
    index = open_index(settings)
    assert index.stats()["collections"]["default"]["lexical_chunks"] == 3
    assert index.lexical("photosynthesis", 1, "default")[0].doc_id == "b"
    index.close()

    # out of step: a manifest from an older generation is replaced by a rebuild
    lex_dir = next(settings.lexical_dir.iterdir())
    manifest = json.loads((lex_dir / "manifest.json").read_text())
    manifest["generation"] = 0
    (lex_dir / "manifest.json").write_text(json.dumps(manifest))
    index = open_index(settings)
    assert LexicalIndex.load(lex_dir).generation == index.catalog.generation("default")
    assert index.stats()["collections"]["default"]["consistent"]
    index.close()


def test_second_writer_gets_a_clear_error(settings) -> None:  # type: ignore[no-untyped-def]
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
            open_index(settings)
        assert err.value.code == "data_dir_locked"
        assert f"pid {holder.pid}" in err.value.message
    finally:
        holder.kill()
        holder.wait()
    open_index(settings).close()  # the OS released the dead holder's lock


@pytest.mark.slow
def test_readers_never_see_both_versions_or_neither(settings, embedder) -> None:  # type: ignore[no-untyped-def]
    index = open_index(settings)
    versions = [DOC_A1, DOC_A2]
    vectors = [embedder.embed(v) for v in versions]
    write(index, embedder, "v0", "tower.txt", versions[0])
    seen: list[set[str]] = []
    stop = threading.Event()
    q = embedder.embed_query("Eiffel Tower")

    def reader() -> None:
        while not stop.is_set():
            with index.consistent_read():
                ids = {h.doc_id for h in index.dense(q, 10, "default")}
                ids |= {h.doc_id for h in index.lexical("Eiffel Tower", 10, "default")}
            seen.append(ids)

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
    assert seen and all(len(ids) == 1 for ids in seen), [s for s in seen if len(s) != 1][:3]


@pytest.mark.slow
def test_http_client_against_a_real_chroma_server(make_settings, embedder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import free_port

    chroma = Path(sys.executable).with_name("chroma")
    port = free_port()
    server = subprocess.Popen(
        [str(chroma), "run", "--path", str(tmp_path / "server"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        import httpx

        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            pytest.fail("chroma server did not start")
        settings = make_settings(chroma_url=f"http://127.0.0.1:{port}")
        index = open_index(settings)
        assert index.stats()["backend"] == "chroma-http"
        write(index, embedder, "a1", "tower.txt", DOC_A1)
        write(index, embedder, "a2", "tower.txt", DOC_A2)
        hits = index.dense(embedder.embed_query("Eiffel Tower height"), 5, "default")
        assert [h.doc_id for h in hits] == ["a2", "a2"]
        assert index.stats()["collections"]["default"]["consistent"]
        index.close()
        assert not (settings.data_dir / "chroma").exists(), "the HTTP client must not write locally"
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_lexical_matches_rank_bm25_on_squad(datasets) -> None:  # type: ignore[no-untyped-def]
    """rank-bm25 is the reference; our engine must rank the same documents at the top."""
    from rank_bm25 import BM25Okapi

    from rag.index.analyzer import analyze

    data = json.loads((datasets / "squad2_dev_cs224n_half" / "dev-v2.0.json").read_text())
    texts = [p["context"] for a in data["data"] for p in a["paragraphs"]]
    questions = [q["question"] for a in data["data"] for p in a["paragraphs"] for q in p["qas"]][::20]
    index = LexicalIndex()
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
