"""``rag reindex``: a collection moves to another embedding model while it keeps answering.

Real Chroma, real ingestion of text files with MiniLM, and the tiny random model of
``tests/conftest.py`` as the model switched to (fast; its answers mean nothing, but every
query must be answered, by one model or the other, never fail).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from cli.main import main as rag
from rag.catalog import BUILDING, Catalog
from rag.errors import EmbeddingModelMismatch
from rag.index.store import document_chunk_ids, open_store
from rag.models import canonical_model_name
from rag.settings import Settings
from service.reindex import reindex
from service.runtime import Runtime

REPO = Path(__file__).resolve().parents[2]
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
CITIES = ["Lyon", "Porto", "Turin", "Ghent", "Bergen", "Krakow", "Seville", "Leipzig"]
RIVERS = ["Rhone", "Douro", "Po", "Scheldt", "Bergenfjord", "Vistula", "Guadalquivir", "Elster"]


def _corpus(folder: Path, cities: list[str] = CITIES) -> list[Path]:
    """One text file per city: several paragraphs, so each makes a few chunks."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, city in enumerate(cities):
        river = RIVERS[n % len(RIVERS)]
        paragraphs = [
            f"{city} is a city on the {river}. Its old town grew around a market square and a cathedral.",
            f"The economy of {city} rests on trade, universities and a port on the {river} that once"
            f" shipped wool, wine and timber to the rest of Europe.",
            f"Every spring {city} holds a festival of music in the streets; visitors come by train.",
            f"The museum of {city} keeps maps of the {river} from the sixteenth century onwards, and"
            f" paintings of the floods that shaped the quarter by the water.",
        ] * 3
        path = folder / f"{city.lower()}.txt"
        path.write_text("\n\n".join(paragraphs), encoding="utf-8")
        paths.append(path)
    return paths


def _ingest(settings: Settings, paths: list[Path]) -> None:
    with Runtime(settings) as rt:
        for path in paths:
            rt.ingestion.ingest_file(path)


class Client(threading.Thread):
    """Asks the same question over and over through a reader, as ``rag search`` does, and keeps score."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(name="query-client", daemon=True)
        self.runtime = Runtime(settings, writer=False)
        self.answered = 0
        self.failures: list[BaseException] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                result = self.runtime.query.search("Which river runs through Porto?", k=5)
                assert result.results, "a query found nothing"
                self.answered += 1
            except BaseException as exc:
                self.failures.append(exc)

    def wait_for(self, answered: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while self.answered < answered and not self.failures:
            assert time.monotonic() < deadline, f"only {self.answered} queries answered"
            time.sleep(0.02)


def test_rag_reindex_switches_models_while_a_client_queries(
    make_settings: Any, tiny_embedding_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings()
    _ingest(settings, _corpus(tmp_path / "docs"))
    client = Client(settings)
    client.start()
    try:
        client.wait_for(5)
        before = client.answered
        capsys.readouterr()
        status = rag(
            ["--data-dir", str(settings.data_dir), "reindex", "--model", tiny_embedding_model, "--json"]
        )
        printed = capsys.readouterr().out
        during = client.answered - before
        client.wait_for(client.answered + 10)  # and on, with the new model
    finally:
        client.stop.set()
        client.join(timeout=60)
    assert status == 0, printed
    assert client.failures == [], f"{len(client.failures)} failed queries, first: {client.failures[:1]!r}"
    assert during > 0, "no query was answered while the re-index ran"

    store = open_store(settings, writer=False)
    record = store.embedding("default")
    assert record is not None and record.spec.model == canonical_model_name(tiny_embedding_model)
    assert record.spec.dim == 32 and record.physical != "default"
    assert store.vectors.count(record.physical) == store.catalog.active_chunk_total("default")
    assert store.vectors.count("default") == 0  # the old vectors are gone
    assert store.catalog.vector_sets() == []
    assert '"switched": true' in printed
    store.close()
    client.runtime.close()


def test_writes_during_a_reindex_are_carried_over(
    make_settings: Any, tiny_embedding_model: str, tmp_path: Path
) -> None:
    settings = make_settings()
    paths = _corpus(tmp_path / "docs", CITIES[:4])
    late = _corpus(tmp_path / "late", ["Utrecht"])[0]
    with Runtime(settings) as rt:
        for path in paths:
            rt.ingestion.ingest_file(path)
        victim = rt.index.catalog.documents("default")[0]
        tiny = rt.load_embedder(tiny_embedding_model)
        written: list[str] = []

        def meanwhile(done: int, total: int) -> None:
            if not written:  # between two batches: a new document, and one deleted
                written.append(rt.ingestion.ingest_file(late).document.id)
                rt.index.delete(victim.id)

        report = reindex(rt.index, "default", tiny, batch_chunks=4, grace_s=0, progress=meanwhile)
        assert report.switched and written

        record = rt.index.embedding("default")
        assert record is not None and record.spec == tiny.spec
        active = rt.index.catalog.documents("default")
        assert written[0] in {d.id for d in active} and victim.id not in {d.id for d in active}
        assert report.documents == len(active) == 4
        assert report.chunks == rt.index.catalog.active_chunk_total("default")
        assert rt.index.vectors.count(record.physical) == report.chunks
        late_doc = next(d for d in active if d.id == written[0])
        late_ids = document_chunk_ids(late_doc)
        assert len(rt.index.vectors.get(record.physical, late_ids)) == len(late_ids)
        assert rt.index.vectors.get(record.physical, document_chunk_ids(victim)) == []
        assert rt.index.stats()["collections"]["default"]["consistent"]

        # from now on the collection is queried and written with the tiny model
        assert rt.query.search("Which river runs through Utrecht?", k=3).results
        with pytest.raises(EmbeddingModelMismatch):
            rt.ingestion.ingest_file(_corpus(tmp_path / "after", ["Namur"])[0])
        assert not rt.ingestion_for("default").ingest_file(tmp_path / "after" / "namur.txt").duplicate

        again = reindex(rt.index, "default", tiny)
        assert not again.switched  # already indexed with it


_CRASH_SCRIPT = """
import sys, time
from pathlib import Path
from rag.settings import load_settings
from service.reindex import reindex
from service.runtime import Runtime

settings = load_settings(data_dir=Path(sys.argv[1]), reranker="none")
rt = Runtime(settings)

def progress(done, total):
    print("progress", done, total, flush=True)
    time.sleep(60)  # killed here, before the switch

reindex(rt.index, "default", rt.load_embedder(sys.argv[2]), batch_chunks=8, progress=progress)
"""


@pytest.mark.slow
def test_a_reindex_killed_before_the_switch_leaves_the_old_model_serving(
    make_settings: Any, tiny_embedding_model: str, tmp_path: Path
) -> None:
    settings = make_settings()
    _ingest(settings, _corpus(tmp_path / "docs", CITIES[:3]))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CRASH_SCRIPT, str(settings.data_dir), tiny_embedding_model],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("progress"), line
        building = Catalog(settings.catalog_path).vector_sets(BUILDING)
        assert len(building) == 1
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)

    with Runtime(settings) as rt:  # the next writer drops the partial vectors
        assert rt.index.catalog.vector_sets() == []
        assert rt.index.vectors.count(building[0].physical) == 0
        record = rt.index.embedding("default")
        assert record is not None and record.spec.model == MINILM and record.physical == "default"
        assert rt.query.search("Which river runs through Porto?", k=3).results[0].document_name == "porto.txt"


def test_a_query_embedded_just_before_the_switch_is_served_from_the_old_vectors(
    make_settings: Any, tiny_embedding_model: str, tmp_path: Path
) -> None:
    settings = make_settings()
    _ingest(settings, _corpus(tmp_path / "docs", CITIES[:2]))
    with Runtime(settings) as rt:
        store, tiny = rt.index, rt.load_embedder(tiny_embedding_model)
        old = rt.embedder.embed_query("Which river runs through Porto?")  # before the switch
        job = store.begin_reindex("default", tiny.spec)
        for doc in store.active_documents("default"):
            rows = store.read_chunks(job, document_chunk_ids(doc))
            store.put_reindexed(job, rows, tiny.embed([text for _, text, _ in rows]))
        retired = store.finish_reindex(job, tiny.embed)
        assert retired is not None and retired.physical == "default"

        best = store.dense(old, 3, "default")[0]  # MiniLM's vectors, still there
        assert store.get([best.chunk_id])[0].document_name == "porto.txt"
        assert store.dense(tiny.embed_query("Porto"), 3, "default")  # the new model's vectors
        store.drop_retired(retired)
        with pytest.raises(EmbeddingModelMismatch):  # too late: the old vectors are gone
            store.dense(old, 3, "default")
