"""Retrieval quality: ``python -m eval.experiments retrieval``.

SQuAD 2.0 dev (every paragraph of the shared copy ingested as a document) and ClapNQ dev, the gold
paragraph's hit@5, MRR@10 and more for dense only, BM25 only and the fusions, from one retrieval
per question through ``rag.retrieval`` (every system is scored from the same two ranked lists),
plus a sweep of the fusion parameters chosen on one half of SQuAD and scored on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.experiments.common import (
    CLAPNQ,
    SQUAD,
    Corpus,
    Say,
    doc_ranking,
    estimate,
    experiment_settings,
    header,
    ingest,
    progress,
    retrieve_all,
)
from eval.golden import load_clapnq, load_squad
from eval.metrics import retrieval as rm
from eval.runner import InProcessTarget, RunOptions
from rag.fusion import fuse
from rag.retrieval import Retrieval
from rag.settings import Settings

RETRIEVAL_METRICS = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@50")
RRF_KS = (1, 5, 10, 20, 40, 60, 100)
DENSE_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
System = Callable[[Retrieval], list[Any]]


@dataclass
class RetrievalRun:
    """One dataset's questions with both ranked lists each: every system is scored from these."""

    corpus: Corpus
    records: list[Any]
    retrieved: list[Retrieval]
    seconds: float

    def per_query(self, system: System) -> dict[str, dict[str, float]]:
        ranked = {
            r.id: doc_ranking(system(x), self.corpus.golden_ids)
            for r, x in zip(self.records, self.retrieved, strict=True)
        }
        run = rm.ranked_run(ranked)
        qrels = {r.id: {ev.doc: 1 for ev in r.evidence} for r in self.records}
        return {m: rm.per_query(m, run, qrels) for m in RETRIEVAL_METRICS}


def _systems(settings: Settings) -> dict[str, System]:
    return {
        "dense": lambda r: r.dense,
        "bm25": lambda r: r.lexical,
        "hybrid_rrf": _rrf(settings.rrf_k),
        "hybrid_weighted": _weighted(settings.fusion_dense_weight),
    }


def _rrf(k: int) -> System:
    return lambda r: fuse(r.dense, r.lexical, "rrf", rrf_k=k)


def _weighted(w: float) -> System:
    return lambda r: fuse(r.dense, r.lexical, "weighted", dense_weight=w)


def _sweep_systems() -> dict[str, System]:
    out = {f"rrf k={k}": _rrf(k) for k in RRF_KS}
    return out | {f"weighted w={w}": _weighted(w) for w in DENSE_WEIGHTS}


def _score_systems(run: RetrievalRun, systems: dict[str, System], seed: int) -> dict[str, Any]:
    per_system = {name: run.per_query(system) for name, system in systems.items()}
    results = {
        name: {m: estimate(list(values[m].values()), seed) for m in RETRIEVAL_METRICS}
        for name, values in per_system.items()
    }
    pairs = [("hybrid_rrf", "dense"), ("hybrid_rrf", "bm25"), ("hybrid_weighted", "dense")]
    pairs.append(("hybrid_weighted", "bm25"))
    paired = {
        f"{a} - {b}": {m: _paired(per_system[a][m], per_system[b][m], seed) for m in ("hit@5", "mrr@10")}
        for a, b in pairs
    }
    return {"results": results, "paired_difference": paired}


def _sweep(runs: dict[str, RetrievalRun], seed: int) -> dict[str, Any]:
    """Fusion parameters chosen by MRR@10 on a tune half of SQuAD's questions, then scored on the
    held-out half and on ClapNQ, so a recommendation is not graded on the questions that chose it."""
    systems: dict[str, System] = {
        "dense": lambda r: r.dense,
        "bm25": lambda r: r.lexical,
        **_sweep_systems(),
    }
    ids = sorted(r.id for r in runs["squad2"].records)
    random.Random(seed).shuffle(ids)
    tune = set(ids[: len(ids) // 2])
    table: dict[str, dict[str, float]] = {}
    for name, system in systems.items():
        row: dict[str, float] = {}
        for dataset, run in runs.items():
            mrr = run.per_query(system)["mrr@10"]
            if dataset == "squad2":
                row["squad2_tune"] = _mean([v for q, v in mrr.items() if q in tune])
                row["squad2_test"] = _mean([v for q, v in mrr.items() if q not in tune])
            else:
                row[dataset] = _mean(list(mrr.values()))
        table[name] = row

    def best(prefix: str) -> str:
        return max((n for n in table if n.startswith(prefix)), key=lambda n: table[n]["squad2_tune"])

    return {
        "metric": "mrr@10",
        "chosen_on_squad2_tune_half": {"rrf": best("rrf"), "weighted": best("weighted")},
        "table": table,
    }


def _mean(values: Sequence[float]) -> float:
    return round(float(np.mean(values)), 4) if values else 0.0


def run_retrieval(args: argparse.Namespace) -> dict[str, Any]:
    say = progress(args)
    settings = experiment_settings(Path(args.data_dir))
    datasets = Path(args.datasets)
    squad = load_squad(datasets / SQUAD, name="squad2-dev-all-paragraphs")
    clapnq = load_clapnq(datasets / CLAPNQ, name="clapnq-dev")
    squad_records = [r for r in squad.records if r.answerable]
    if args.sample and args.sample < len(squad_records):
        squad_records = random.Random(args.seed).sample(squad_records, args.sample)
    target = InProcessTarget(settings, RunOptions())
    try:
        runs: dict[str, RetrievalRun] = {}
        for name, golden, records in (
            ("squad2", squad, squad_records),
            ("clapnq", clapnq, [r for r in clapnq.records if r.answerable]),
        ):
            corpus = ingest(target, golden, say)
            retrieved, seconds = retrieve_all(target, corpus, [r.question for r in records], say)
            runs[name] = RetrievalRun(corpus, records, retrieved, seconds)
        reranker = target.runtime.reranker
        scored = {name: _score_systems(run, _systems(settings), args.seed) for name, run in runs.items()}
        if reranker.available:
            for name, run in runs.items():
                say(f"{name}: re-ranking the fused candidates")
                scored[name]["results"]["hybrid_rrf_reranked"] = {
                    m: estimate(list(v.values()), args.seed) for m, v in _reranked(target, run, say).items()
                }
    finally:
        asyncio.run(target.aclose())
    payload = header("python -m eval.experiments retrieval", settings)
    payload |= {
        "datasets": {
            "squad2": {
                "what": f"SQuAD 2.0 dev ({SQUAD}), every paragraph ingested as a document; answerable "
                "questions, the gold paragraph is the relevant document",
                "documents": len(squad.documents),
                "chunks": runs["squad2"].corpus.chunks,
                "questions": len(squad_records),
            },
            "clapnq": {
                "what": f"ClapNQ dev ({CLAPNQ}), its passages ingested as documents; answerable questions, "
                "the gold passage is the relevant document",
                "documents": len(clapnq.documents),
                "chunks": runs["clapnq"].corpus.chunks,
                "questions": len(runs["clapnq"].records),
            },
        },
        "reranker": {"name": reranker.name, "available": reranker.available, "reason": reranker.reason},
        "squad2": scored["squad2"],
        "clapnq": scored["clapnq"],
        "fusion_sweep": _sweep(runs, args.seed),
        "seconds": {
            name: {"ingest": run.corpus.ingest_s, "retrieval": round(run.seconds, 1)}
            for name, run in runs.items()
        },
    }
    return payload


def _reranked(target: InProcessTarget, run: RetrievalRun, say: Say) -> dict[str, dict[str, float]]:
    """Re-rank the first ``rerank_candidates`` RRF-fused chunks: the retrieval stage with the loaded model."""
    rrf = target.settings.model_copy(update={"fusion": "rrf"})
    questions = [r.question for r in run.records]
    retrieved, seconds = retrieve_all(
        target, run.corpus, questions, say, settings=rrf, reranker=target.runtime.reranker
    )
    reranked = RetrievalRun(run.corpus, run.records, retrieved, seconds)
    return reranked.per_query(lambda r: [x.fused for x in r.ranked])


def _paired(a: dict[str, float], b: dict[str, float], seed: int) -> dict[str, float | int | None]:
    """Mean per-question difference with its bootstrap CI: both systems ran the same questions."""
    return estimate([a[q] - b[q] for q in a], seed)
