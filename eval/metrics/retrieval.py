"""Retrieval metrics with the BEIR/TREC definitions (those of trec_eval, pytrec_eval and ranx).

A run is ``{qid: {doc_id: score}}`` and qrels are ``{qid: {doc_id: relevance}}``. Documents with
relevance <= 0 are not relevant. Scores are averaged over the queries that have at least one
relevant document; such a query missing from the run scores 0 (trec_eval's ``-c``), so a system
cannot look better by failing to answer. Ties in score are broken by document id, descending,
as trec_eval does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

from rag.errors import InvalidRequest

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

METRICS = ("hit", "recall", "precision", "mrr", "ndcg")


def ranking(scores: Mapping[str, float], k: int | None = None) -> list[str]:
    """Document ids best first (score descending, then id descending)."""
    ordered = [doc for doc, _ in sorted(scores.items(), key=lambda item: (item[1], item[0]), reverse=True)]
    return ordered if k is None else ordered[:k]


def hit_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    return 1.0 if any(rels.get(doc, 0) > 0 for doc in ranked[:k]) else 0.0


def recall_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    relevant = sum(1 for r in rels.values() if r > 0)
    if relevant == 0:
        return 0.0
    return sum(1 for doc in ranked[:k] if rels.get(doc, 0) > 0) / relevant


def precision_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int) -> float:
    """Relevant in the top k over k (not over the number retrieved), as trec_eval's P_k."""
    return sum(1 for doc in ranked[:k] if rels.get(doc, 0) > 0) / k


def mrr_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    for position, doc in enumerate(ranked[:k], 1):
        if rels.get(doc, 0) > 0:
            return 1.0 / position
    return 0.0


def ndcg_at_k(ranked: Sequence[str], rels: Mapping[str, int], k: int = 10) -> float:
    """Linear gains (the graded relevance itself) and log2 discounts, as trec_eval's ndcg_cut."""
    dcg = sum(max(rels.get(doc, 0), 0) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted((r for r in rels.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


_FUNCS = {
    "hit": hit_at_k,
    "recall": recall_at_k,
    "precision": precision_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
}


def parse_metric(metric: str) -> tuple[str, int]:
    """``"ndcg@10"`` -> ``("ndcg", 10)``."""
    name, _, cut = metric.partition("@")
    if name not in _FUNCS or not cut.isdigit() or int(cut) < 1:
        raise InvalidRequest(f"unknown retrieval metric {metric!r}; use one of {', '.join(METRICS)} with @k")
    return name, int(cut)


def judged_queries(qrels: Qrels) -> list[str]:
    """Queries that count: those with at least one relevant document."""
    return [qid for qid, rels in qrels.items() if any(r > 0 for r in rels.values())]


def per_query(metric: str, run: Run, qrels: Qrels) -> dict[str, float]:
    """One value per judged query (for confidence intervals and distributions)."""
    name, k = parse_metric(metric)
    func = _FUNCS[name]
    out: dict[str, float] = {}
    for qid in judged_queries(qrels):
        ranked = ranking(run.get(qid, {}), k)
        out[qid] = func(ranked, qrels[qid], k)
    return out


def evaluate(run: Run, qrels: Qrels, metrics: Iterable[str]) -> dict[str, float]:
    """Mean of each metric over the judged queries (0.0 when there are none)."""
    out: dict[str, float] = {}
    for metric in metrics:
        values = per_query(metric, run, qrels)
        out[metric] = sum(values.values()) / len(values) if values else 0.0
    return out


def ranked_run(ranked: Mapping[str, Sequence[str]]) -> dict[str, dict[str, float]]:
    """Turn ranked id lists into a run, keeping each id's first (best) position.

    Chunk hits map to documents this way (a document ranks where its best chunk ranks), and the
    scores are positions, so fused or re-ranked scores that tie cannot reorder anything.
    """
    run: dict[str, dict[str, float]] = {}
    for qid, ids in ranked.items():
        scores: dict[str, float] = {}
        for doc in ids:
            if doc not in scores:
                scores[doc] = float(-len(scores))
        run[qid] = {doc: score + len(scores) for doc, score in scores.items()}
    return run
