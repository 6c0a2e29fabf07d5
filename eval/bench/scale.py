"""``make bench`` section ``scale``: the index of one node at 1,000,000 chunks.

As the 100k query benchmark does (``eval.bench.query``): real sentences for the lexical side,
vectors from real embeddings of a few hundred chunks plus Gaussian noise (cosine about 0.9 to
their source) for HNSW, written through the document store in documents of 1,000 chunks.
Measured: retrieval with fusion and packing per query (p50/p95, no re-ranker, no LLM), the
start-up of a fresh process on that data directory until its first answer is packed (a replica
coming up), its peak RSS, and the disk the index takes.

``RAG_BENCH_SCALE_DIR=DIR`` keeps the filled index in DIR and reuses it on the next run (the
fill takes about 40 minutes here), so start-up can be measured again without filling again.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.corpus import real_sentences_and_questions, synthetic_chunks
from eval.bench.query import _stats, stage_timings
from rag.settings import load_settings
from rag.types import Chunk, Document, chunk_id

DOC_CHUNKS = 1000

_REPLICA = r"""
import json, resource, sys, threading, time
started = time.perf_counter()
from pathlib import Path
from rag.answering import QueryPipeline
from rag.embedder import get_embedder
from rag.index.store import open_store
from rag.rerank.none import NoReranker
from rag.settings import load_settings
imported = time.perf_counter() - started
settings = load_settings(data_dir=Path(sys.argv[1]), reranker="none", dense_floor=None)
store = open_store(settings, writer=False)
opened = time.perf_counter() - started
timings = {}
def warm_vectors():
    store.warm_vectors()
    timings["vectors_warm_s"] = time.perf_counter() - started
store.warm_lexical()  # as the service's warm-up does
timings["lexical_warm_s"] = time.perf_counter() - started
warming = threading.Thread(target=warm_vectors)
warming.start()
embedder = get_embedder(settings.embedding_model)
embedder.embed_query("warm up")
timings["model_s"] = time.perf_counter() - started
warming.join()
ready = time.perf_counter() - started
pipeline = QueryPipeline(settings, store, embedder, NoReranker(), None)
pipeline.prepare(sys.argv[2], "bench", None, settings.top_k)
print(json.dumps({"imported_s": imported, "opened_s": opened, **timings, "ready_s": ready,
                  "first_answer_packed_s": time.perf_counter() - started,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _disk_mib(path: Path) -> float:
    return round(sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20, 1)


@contextlib.contextmanager
def _scale_dir() -> Iterator[Path]:
    kept = os.environ.get("RAG_BENCH_SCALE_DIR")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        yield Path(kept)
        return
    with tempfile.TemporaryDirectory(prefix="rag-scale-") as tmp:
        yield Path(tmp)


def _fill(store: Any, sentences: list[str], base: Any, n: int) -> float:
    """Write ``n`` chunks in documents of 1,000; the seconds it took."""
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for start in range(0, n, DOC_CHUNKS):
        size = min(DOC_CHUNKS, n - start)
        part = synthetic_chunks(sentences, size, seed=start)
        vectors = base[(np.arange(start, start + size)) % len(base)] + rng.normal(
            0, 0.025, (size, base.shape[1])
        ).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        doc_id = f"scale{start // DOC_CHUNKS:06d}"
        doc = Document(doc_id, f"{doc_id}.txt", "bench", doc_id, "text", 1, pages=1)
        chunks = [Chunk(chunk_id(doc_id, i), doc_id, i, t, 1, 1, 0, len(t), 200) for i, t in enumerate(part)]
        store.write(doc, chunks, vectors)
        if (start // DOC_CHUNKS) % 50 == 0:
            print(f"scale: {start + size:,} chunks in {time.perf_counter() - started:.0f} s", flush=True)
    return time.perf_counter() - started


def run_scale_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    from rag.answering import QueryPipeline
    from rag.embedder import get_embedder
    from rag.index.store import open_store
    from rag.rerank.none import NoReranker

    n = 50_000 if quick else 1_000_000
    sentences, questions = real_sentences_and_questions(datasets)
    queries = questions[::37][:200]
    embedder = get_embedder("sentence-transformers/all-MiniLM-L6-v2")
    base_n = 500
    texts = synthetic_chunks(sentences, base_n, seed=1)
    base = embedder.embed(texts)
    with _scale_dir() as root:
        data_dir = root / "var"
        settings = load_settings(data_dir=data_dir, reranker="none", dense_floor=None)
        filled = root / f"filled-{n}"
        if filled.exists():
            fill_s = float(filled.read_text())
            store = open_store(settings)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
            store = open_store(settings)
            fill_s = _fill(store, sentences, base, n)
            filled.write_text(f"{fill_s:.1f}")
        pipeline = QueryPipeline(settings, store, embedder, NoReranker(), None)
        stages = stage_timings(pipeline, queries, settings.top_k)
        store.close()
        disk = {
            "total_mib": _disk_mib(data_dir),
            "chroma_mib": _disk_mib(data_dir / "chroma"),
            "lexical_mib": _disk_mib(data_dir / "lexical"),
            "catalog_mib": round((data_dir / "catalog.sqlite3").stat().st_size / 2**20, 1),
        }
        starts = []
        for _ in range(2):  # a fresh process each time; the second finds the files in the page cache
            proc = subprocess.run(
                [sys.executable, "-c", _REPLICA, str(data_dir), queries[0]],
                capture_output=True,
                text=True,
                check=True,
            )
            starts.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    out["scale"] = {
        "chunks": n,
        "index_fill_s": round(fill_s, 1),
        "queries": len(queries),
        "stages": {name: _stats(v) for name, v in stages.items()},
        "replica_start": {
            "cold_first_answer_packed_s": round(starts[0]["first_answer_packed_s"], 2),
            "warm_first_answer_packed_s": round(starts[1]["first_answer_packed_s"], 2),
            "cold_ready_s": round(starts[0]["ready_s"], 2),
            "warm_ready_s": round(starts[1]["ready_s"], 2),
            "warm_steps_s": {
                k: round(starts[1][k], 2)
                for k in ("imported_s", "opened_s", "lexical_warm_s", "model_s", "vectors_warm_s")
            },
            "peak_rss_mib": round(max(s["peak_rss_mib"] for s in starts), 1),
        },
        "disk": disk,
        "goals": "retrieval with fusion and packing <= 60 ms p50 at 1M chunks; a replica ready in <= 10 s",
        "note": "embedded Chroma and BM25 segments in one data directory; no LLM, no re-ranker",
    }
