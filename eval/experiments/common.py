"""What both experiments share: settings, output, ingesting a set, and retrieval through the stage."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from eval.golden import REPO_ROOT, GoldenSet
from eval.runner import InProcessTarget, collection_name
from eval.stats import bootstrap_mean
from rag.rerank.base import Reranker
from rag.rerank.none import NoReranker
from rag.retrieval import Retrieval, Retriever
from rag.settings import Settings, load_settings

SQUAD = "squad2_dev_cs224n_half/dev-v2.0.json"
CLAPNQ = "clapnq_dev"
DEFAULT_OUT = REPO_ROOT / "bench-results"
DEFAULT_DATA = REPO_ROOT / "var" / "experiments"  # bench-results/tmp is wiped by other benches

Say = Callable[[str], None]


def experiment_settings(data_dir: Path, **overrides: Any) -> Settings:
    # the embedded defaults, in a data directory of the experiments' own
    return load_settings(data_dir=data_dir, max_top_k=100, **overrides)


def estimate(values: Sequence[float], seed: int = 0) -> dict[str, float | int | None]:
    est = bootstrap_mean(list(values), seed=seed)
    if est is None:
        return {"value": None, "low": None, "high": None, "n": 0}
    return {"value": round(est.value, 4), "low": round(est.low, 4), "high": round(est.high, 4), "n": est.n}


def write(out: Path, name: str, payload: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def header(command: str, settings: Settings) -> dict[str, Any]:
    return {
        "command": command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count() or 0, "python": platform.python_version()},
        "settings": {
            k: getattr(settings, k)
            for k in (
                "embedding_model",
                "chunk_tokens",
                "chunk_overlap_tokens",
                "dense_k",
                "lexical_k",
                "fusion",
                "rrf_k",
                "fusion_dense_weight",
                "top_k",
                "context_budget_tokens",
            )
        },
    }


def progress(args: argparse.Namespace) -> Say:
    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    return say


@dataclass
class Corpus:
    """A set ingested into its collection, with the index's document ids mapped back to golden names."""

    golden: GoldenSet
    collection: str
    golden_ids: dict[str, str]
    chunks: int
    ingest_s: float


def ingest(target: InProcessTarget, golden: GoldenSet, say: Say) -> Corpus:
    collection = collection_name(golden, target.settings)
    say(f"{golden.name}: indexing {len(golden.documents)} documents into {collection}")
    started = time.perf_counter()
    ids = asyncio.run(target.ensure_documents(golden, collection))
    seconds = time.perf_counter() - started
    docs = target.runtime.index.catalog.documents(collection)
    chunks = sum(d.chunks for d in docs)
    say(f"{golden.name}: {len(docs)} documents, {chunks} chunks ({seconds:.0f} s)")
    return Corpus(golden, collection, ids, chunks, round(seconds, 1))


def retrieve_all(
    target: InProcessTarget,
    corpus: Corpus,
    questions: Sequence[str],
    say: Say,
    *,
    k: int = 0,
    settings: Settings | None = None,
    reranker: Reranker | None = None,
) -> tuple[list[Retrieval], float]:
    """Every question through the retrieval stage, its query vectors embedded in batches (the same vectors).

    ``k=0`` keeps only the ranked lists (dense, lexical, fused): every fusion is then scored from
    the same two lists. No re-ranker unless one is given.
    """
    runtime = target.runtime
    retriever = Retriever(
        settings or target.settings, runtime.index, runtime.embedder, reranker or NoReranker()
    )
    started = time.perf_counter()
    vectors = runtime.embedder.embed(list(questions))
    out = []
    for i, (question, vector) in enumerate(zip(questions, vectors, strict=True), 1):
        out.append(retriever.retrieve(question, collection=corpus.collection, k=k, vector=vector))
        if i % 500 == 0:
            say(f"{corpus.golden.name}: retrieved {i}/{len(questions)}")
    return out, time.perf_counter() - started


def doc_ranking(hits: Sequence[Any], golden_ids: dict[str, str]) -> list[str]:
    """Golden document names, best first, each at its best chunk's position."""
    seen: dict[str, None] = {}
    for h in hits:
        seen.setdefault(golden_ids.get(h.doc_id, h.doc_id), None)
    return list(seen)
