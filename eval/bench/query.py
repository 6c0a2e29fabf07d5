"""Query latency per stage at 10k and 100k chunks, without the LLM (issue 3).

Embedding 100k chunks would take hours here, so vectors are built from real embeddings of a
few hundred chunks plus Gaussian noise (cosine about 0.9 to their source): the HNSW graph
sees realistic, clustered, normalised vectors. The lexical side indexes real sentences.
The re-ranker's cost per candidate is measured with a cross-encoder of the same architecture
as ms-marco-MiniLM-L-6-v2 (6 layers, 384 wide) with random weights, since the trained one
cannot be downloaded here; its speed, not its judgement, is what is measured.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from eval.bench.corpus import real_sentences_and_questions, synthetic_chunks
from rag.answering import QueryPipeline
from rag.index.base import IndexWriter
from rag.settings import load_settings
from rag.types import Chunk, Document, chunk_id

_DOC_CHUNKS = 1000


def _stats(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered), 3),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 3),
    }


def stage_timings(pipeline: QueryPipeline, queries: list[str], top_k: int) -> dict[str, list[float]]:
    """Milliseconds per retrieval stage, packing included, for each query (after 10 to warm up)."""
    for q in queries[:10]:
        pipeline.prepare(q, "bench", None, top_k)
    stages: dict[str, list[float]] = {}
    for q in queries:
        t = time.perf_counter()
        retrieval = pipeline.prepare(q, "bench", None, top_k).retrieval
        total = (time.perf_counter() - t) * 1000
        for name, ms in retrieval.timings.items():
            stages.setdefault(name, []).append(ms)
        stages.setdefault("total", []).append(total)
        stages.setdefault("total_without_embed", []).append(total - retrieval.timings.get("embed", 0.0))
    return stages


def _fill(store: IndexWriter, texts: list[str], vectors: np.ndarray) -> None:
    for start in range(0, len(texts), _DOC_CHUNKS):
        doc_id = f"bench{start // _DOC_CHUNKS:05d}"
        doc = Document(doc_id, f"{doc_id}.txt", "bench", doc_id, "text", 1, pages=1)
        part = texts[start : start + _DOC_CHUNKS]
        chunks = [Chunk(chunk_id(doc_id, i), doc_id, i, t, 1, 1, 0, len(t), 200) for i, t in enumerate(part)]
        store.write(doc, chunks, vectors[start : start + len(part)])


def _cross_encoder_cost(tmp: Path, passages: list[str], question: str) -> dict[str, Any]:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from rag.models import bundled_model_path
    from rag.rerank.cross_encoder import CrossEncoderReranker

    path = tmp / "minilm-l6-shaped-cross-encoder"
    base = bundled_model_path("sentence-transformers/all-MiniLM-L6-v2")
    config = BertConfig.from_pretrained(str(base), num_labels=1)
    BertForSequenceClassification(config).save_pretrained(path)
    AutoTokenizer.from_pretrained(str(base)).save_pretrained(path)
    reranker = CrossEncoderReranker(str(path))
    reranker.score(question, passages[:4])
    per_candidate = []
    for n in (10, 30):
        t = time.perf_counter()
        reranker.score(question, passages[:n])
        per_candidate.append((time.perf_counter() - t) * 1000 / n)
    return {
        "model": "random-weight cross-encoder shaped like ms-marco-MiniLM-L-6-v2 (6x384)",
        "ms_per_candidate": round(statistics.median(per_candidate), 2),
        "ms_for_30_candidates": round(per_candidate[-1] * 30, 1),
    }


def run_query_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    from rag.embedder import get_embedder
    from rag.index.store import open_store
    from rag.rerank.none import NoReranker

    sizes = (2_000, 10_000) if quick else (10_000, 100_000)
    sentences, questions = real_sentences_and_questions(datasets)
    queries = questions[::37][: 60 if quick else 200]
    embedder = get_embedder("sentence-transformers/all-MiniLM-L6-v2")
    texts = synthetic_chunks(sentences, max(sizes), seed=1)
    base_n = 200 if quick else 500
    started = time.perf_counter()
    base = embedder.embed(texts[:base_n])
    rng = np.random.default_rng(0)
    figures: dict[str, Any] = {
        "base_embeddings": base_n,
        "embed_seconds": round(time.perf_counter() - started, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            # no dense floor: every query goes through packing, the path being measured
            settings = load_settings(data_dir=Path(tmp) / f"var{n}", reranker="none", dense_floor=None)
            vectors = base[np.arange(n) % base_n] + rng.normal(0, 0.025, (n, base.shape[1])).astype(
                np.float32
            )
            vectors[:base_n] = base[: min(base_n, n)]
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            store = open_store(settings)
            t = time.perf_counter()
            _fill(store, texts[:n], vectors)
            fill_s = time.perf_counter() - t
            # prepare = the retrieval stage (rag.retrieval) plus packing: an answer's path up to the LLM
            pipeline = QueryPipeline(settings, store, embedder, NoReranker(), None)
            stages = stage_timings(pipeline, queries, settings.top_k)
            figures[str(n)] = {
                "index_fill_s": round(fill_s, 1),
                "queries": len(queries),
                "stages": {name: _stats(v) for name, v in stages.items()},
            }
            store.close()
        figures["reranker"] = _cross_encoder_cost(Path(tmp), texts[:40], queries[0])
    out["query"] = {
        **figures,
        "goal": "retrieval + fusion + packing <= 50 ms p50 at 100k chunks, no re-ranker",
        "note": "no LLM; reranker none; top_k and budgets at their defaults",
    }
