"""The README's retrieval and abstention figures: ``python -m eval.experiments retrieval|floor``.

``retrieval``: SQuAD 2.0 dev (every paragraph of the shared copy ingested as a document), the
gold paragraph's hit@5 and MRR@10 for dense only, BM25 only and the fusions, from one
retrieval per question (the three systems see the same two ranked lists).

``floor``: which signal tells an answerable question from an unanswerable one (SQuAD 2.0 and
ClapNQ dev): the top fused score (what ``relevance_floor`` cuts when no re-ranker is loaded),
the top dense cosine, the top BM25 score, and the extractive answerer's best sentence score
(what its ``min_score`` cuts). Each threshold is chosen on one half of the questions (split by
passage, so no passage is in both) and scored on the other.

Both write JSON to ``bench-results/``. Retrieval mirrors ``QueryPipeline._retrieve`` with the
index, embedder and ``rag.fusion.fuse`` called directly, so one query yields every system.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from eval.golden import DEFAULT_DATASETS_DIR, REPO_ROOT, GoldenSet, clapnq_asked_over, load_clapnq, load_squad
from eval.metrics import retrieval as rm
from eval.metrics.answers import abstention_scores
from eval.runner import InProcessTarget, RunOptions, collection_name
from eval.stats import bootstrap_mean
from rag.fusion import fuse
from rag.settings import Settings, load_settings
from rag.types import Hit

SQUAD = "squad2_dev_cs224n_half/dev-v2.0.json"
CLAPNQ = "clapnq_dev"
DEFAULT_OUT = REPO_ROOT / "bench-results"
DEFAULT_DATA = REPO_ROOT / "var" / "experiments"  # bench-results/tmp is wiped by other benches
SIGNALS = ("rrf_top", "weighted_top", "dense_top", "lexical_top", "extractive_top")


# --------------------------------------------------------------------------- shared


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    # the embedded defaults, in a data directory of the experiments' own
    return load_settings(data_dir=data_dir, max_top_k=100, **overrides)


def _estimate(values: Sequence[float], seed: int = 0) -> dict[str, float | int | None]:
    est = bootstrap_mean(list(values), seed=seed)
    if est is None:
        return {"value": None, "low": None, "high": None, "n": 0}
    return {"value": round(est.value, 4), "low": round(est.low, 4), "high": round(est.high, 4), "n": est.n}


def _write(out: Path, name: str, payload: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    path.write_text(json.dumps(payload, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def _header(command: str, settings: Settings) -> dict[str, Any]:
    return {
        "command": command,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": _cpus(), "python": platform.python_version()},
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


def _cpus() -> int:
    import os

    return os.cpu_count() or 0


@dataclass
class Corpus:
    """A set ingested into its collection, with the index's document ids mapped back to golden names."""

    golden: GoldenSet
    collection: str
    golden_ids: dict[str, str]
    chunks: int
    ingest_s: float


def _ingest(target: InProcessTarget, golden: GoldenSet, say: Callable[[str], None]) -> Corpus:
    collection = collection_name(golden, target.settings)
    say(f"{golden.name}: indexing {len(golden.documents)} documents into {collection}")
    started = time.perf_counter()
    ids = asyncio.run(target.ensure_documents(golden, collection))
    seconds = time.perf_counter() - started
    docs = target.runtime.index.catalog.documents(collection)
    chunks = sum(d.chunks for d in docs)
    say(f"{golden.name}: {len(docs)} documents, {chunks} chunks ({seconds:.0f} s)")
    return Corpus(golden, collection, ids, chunks, round(seconds, 1))


@dataclass
class Retrieved:
    dense: list[Hit]
    lexical: list[Hit]


def _retrieve_all(
    target: InProcessTarget, corpus: Corpus, questions: Sequence[str], say: Callable[[str], None]
) -> tuple[list[Retrieved], float]:
    """Both ranked lists for every question; query vectors are embedded in batches (same vectors)."""
    s = target.settings
    index = target.runtime.index
    started = time.perf_counter()
    vectors = target.runtime.embedder.embed(list(questions))
    out = []
    for i, (question, vector) in enumerate(zip(questions, vectors, strict=True), 1):
        out.append(
            Retrieved(
                dense=index.dense(vector, s.dense_k, corpus.collection),
                lexical=index.lexical(question, s.lexical_k, corpus.collection),
            )
        )
        if i % 500 == 0:
            say(f"{corpus.golden.name}: retrieved {i}/{len(questions)}")
    return out, time.perf_counter() - started


def _doc_ranking(hits: Sequence[Any], golden_ids: dict[str, str]) -> list[str]:
    """Golden document names, best first, each at its best chunk's position."""
    seen: dict[str, None] = {}
    for h in hits:
        seen.setdefault(golden_ids.get(h.doc_id, h.doc_id), None)
    return list(seen)


# --------------------------------------------------------------------------- retrieval


RETRIEVAL_METRICS = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@50")
RRF_KS = (1, 5, 10, 20, 40, 60, 100)
DENSE_WEIGHTS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
System = Callable[[Retrieved], list[Any]]


@dataclass
class RetrievalRun:
    """One dataset's questions with both ranked lists each: every system is scored from these."""

    corpus: Corpus
    records: list[Any]
    retrieved: list[Retrieved]
    seconds: float

    def per_query(self, system: System) -> dict[str, dict[str, float]]:
        ranked = {
            r.id: _doc_ranking(system(x), self.corpus.golden_ids)
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
        name: {m: _estimate(list(values[m].values()), seed) for m in RETRIEVAL_METRICS}
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
    say = _say(args)
    settings = _settings(Path(args.data_dir))
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
            corpus = _ingest(target, golden, say)
            retrieved, seconds = _retrieve_all(target, corpus, [r.question for r in records], say)
            runs[name] = RetrievalRun(corpus, records, retrieved, seconds)
        reranker = target.runtime.reranker
        scored = {name: _score_systems(run, _systems(settings), args.seed) for name, run in runs.items()}
        if reranker.available:
            for name, run in runs.items():
                say(f"{name}: re-ranking the fused candidates")
                scored[name]["results"]["hybrid_rrf_reranked"] = {
                    m: _estimate(list(v.values()), args.seed) for m, v in _reranked(target, run).items()
                }
    finally:
        asyncio.run(target.aclose())
    payload = _header("python -m eval.experiments retrieval", settings)
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


def _reranked(target: InProcessTarget, run: RetrievalRun) -> dict[str, dict[str, float]]:
    """Re-rank the first ``rerank_candidates`` fused chunks, as the pipeline does when a model is loaded."""
    s = target.settings
    index, reranker = target.runtime.index, target.runtime.reranker

    def reranked(record: Any, r: Retrieved) -> list[Any]:
        pool = fuse(r.dense, r.lexical, "rrf", rrf_k=s.rrf_k)[: s.rerank_candidates]
        stored = index.get([h.chunk_id for h in pool])
        scores = reranker.score(record.question, [c.chunk.text for c in stored])
        return [stored[i].chunk for i in sorted(range(len(stored)), key=lambda i: -scores[i])]

    by_question = {id(x): record for record, x in zip(run.records, run.retrieved, strict=True)}
    return run.per_query(lambda x: reranked(by_question[id(x)], x))


def _paired(a: dict[str, float], b: dict[str, float], seed: int) -> dict[str, float | int | None]:
    """Mean per-question difference with its bootstrap CI: both systems ran the same questions."""
    return _estimate([a[q] - b[q] for q in a], seed)


# --------------------------------------------------------------------------- abstention floor


@dataclass
class Signals:
    qid: str
    group: str
    answerable: bool
    values: dict[str, float]


def _signals(
    target: InProcessTarget,
    corpus: Corpus,
    records: Sequence[Any],
    groups: dict[str, str],
    say: Callable[[str], None],
) -> list[Signals]:
    """Every signal for every question, from the pipeline's own steps (no re-ranker, no floor)."""
    from rag.llm.extractive import ExtractiveAnswerer
    from rag.packing import Candidate, ContextPacker

    s = target.settings
    index = target.runtime.index
    packer = ContextPacker(s.context_budget_tokens, encoding=s.tiktoken_encoding)
    answerer = ExtractiveAnswerer(s.embedding_model, device=s.embedding_device)
    retrieved, _ = _retrieve_all(target, corpus, [r.question for r in records], say)
    out: list[Signals] = []
    for i, (record, r) in enumerate(zip(records, retrieved, strict=True), 1):
        rrf = fuse(r.dense, r.lexical, "rrf", rrf_k=s.rrf_k)
        weighted = fuse(r.dense, r.lexical, "weighted", dense_weight=s.fusion_dense_weight)
        fused = rrf if s.fusion == "rrf" else weighted  # the sources the answerer sees
        stored = index.get([h.chunk_id for h in fused[: s.top_k]])
        scores = {h.chunk_id: h.fused for h in fused}
        packed = packer.pack([Candidate(c, scores[c.chunk.id]) for c in stored])
        ranked = answerer.rank(record.question, packed.sources)
        values = {
            "rrf_top": rrf[0].fused if rrf else 0.0,
            "weighted_top": weighted[0].fused if weighted else 0.0,
            "dense_top": r.dense[0].score if r.dense else 0.0,
            "lexical_top": r.lexical[0].score if r.lexical else 0.0,
            "extractive_top": ranked[0].score if ranked else 0.0,
        }
        out.append(Signals(record.id, groups[record.id], record.answerable, values))
        if i % 250 == 0:
            say(f"{corpus.golden.name}: signals for {i}/{len(records)}")
    return out


def _split(items: Sequence[Signals], seed: int) -> tuple[list[Signals], list[Signals]]:
    """Two halves by passage: questions about one passage never sit on both sides."""
    groups = sorted({s.group for s in items})
    random.Random(seed).shuffle(groups)
    first = set(groups[: len(groups) // 2])
    return [s for s in items if s.group in first], [s for s in items if s.group not in first]


def _below(signal: str, floor: float) -> Callable[[Signals], bool]:
    """The abstention rule of a floor: abstain when the signal is below it."""
    return lambda s: s.values[signal] < floor


def _either(a: Callable[[Signals], bool], b: Callable[[Signals], bool]) -> Callable[[Signals], bool]:
    return lambda s: a(s) or b(s)


def _prf(items: Sequence[Signals], abstains: Callable[[Signals], bool]) -> dict[str, float | None]:
    """Abstention precision/recall/F1, and the price paid: the share of answerable questions still answered."""
    decisions = [abstains(s) for s in items]
    score = abstention_scores([not s.answerable for s in items], decisions)
    answerable = [not d for s, d in zip(items, decisions, strict=True) if s.answerable]
    return {
        "precision": _r(score.precision),
        "recall": _r(score.recall),
        "f1": _r(score.f1),
        "answerable_answered": _r(sum(answerable) / len(answerable) if answerable else None),
    }


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


Objective = Callable[[int, int, int, int], float]


def _f1(tp: int, fp: int, fn: int, tn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def _accuracy(tp: int, fp: int, fn: int, tn: int) -> float:
    """Share of right decisions (answer an answerable question, abstain on an unanswerable one).

    Unlike abstention F1 it does not reward abstaining on everything, which scores F1 = 2p/(1+p)
    for a share p of unanswerable questions (0.67 at half).
    """
    total = tp + fp + fn + tn
    return (tp + tn) / total if total else 0.0


OBJECTIVES: dict[str, Objective] = {"f1": _f1, "accuracy": _accuracy}


def _confusion(pred: np.ndarray, y: np.ndarray) -> tuple[int, int, int, int]:
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    return tp, fp, fn, len(y) - tp - fp - fn


def _best_threshold(items: Sequence[Signals], signal: str, objective: Objective = _f1) -> tuple[float, float]:
    """The floor (abstain when the signal is below it) that maximises ``objective`` on ``items``."""
    values = sorted({s.values[signal] for s in items})
    candidates = [values[0] - 1e-9] + [(a + b) / 2 for a, b in itertools.pairwise(values)]
    candidates.append(values[-1] + 1e-9)
    y = np.array([not s.answerable for s in items])
    v = np.array([s.values[signal] for s in items])
    best = (candidates[0], float("-inf"))
    for t in candidates:
        score = objective(*_confusion(v < t, y))
        if score > best[1]:
            best = (float(t), score)
    return best


def _best_pair(
    items: Sequence[Signals], a: str, b: str, objective: Objective = _f1, steps: int = 40
) -> tuple[float, float, float]:
    """Two floors at once (abstain when either signal is below its floor), on a quantile grid."""
    va = np.array([s.values[a] for s in items])
    vb = np.array([s.values[b] for s in items])
    y = np.array([not s.answerable for s in items])
    grid_a = np.unique(np.quantile(va, np.linspace(0, 0.95, steps)))
    grid_b = np.unique(np.quantile(vb, np.linspace(0, 0.95, steps)))
    best = (float(grid_a[0]), float(grid_b[0]), float("-inf"))
    for ta in grid_a:
        for tb in grid_b:
            score = objective(*_confusion((va < ta) | (vb < tb), y))
            if score > best[2]:
                best = (float(ta), float(tb), score)
    return best


def _auc(items: Sequence[Signals], signal: str) -> float | None:
    """P(an answerable question scores higher than an unanswerable one): 0.5 means no separation."""
    from scipy.stats import mannwhitneyu

    pos = [s.values[signal] for s in items if s.answerable]
    neg = [s.values[signal] for s in items if not s.answerable]
    if not pos or not neg:
        return None
    return round(float(mannwhitneyu(pos, neg).statistic) / (len(pos) * len(neg)), 4)


def _study(items: Sequence[Signals], seed: int, extractive_default: float) -> dict[str, Any]:
    tune, test = _split(items, seed)
    out: dict[str, Any] = {
        "questions": len(items),
        "unanswerable": sum(not s.answerable for s in items),
        "halves": {"tune": len(tune), "test": len(test)},
        "auc": {sig: _auc(items, sig) for sig in SIGNALS},
        "abstain_on_everything": _prf(test, lambda s: True),
        "distribution": {
            sig: {
                kind: _quantiles([s.values[sig] for s in items if s.answerable == want])
                for kind, want in (("answerable", True), ("unanswerable", False))
            }
            for sig in SIGNALS
        },
    }
    for name, objective in OBJECTIVES.items():
        floors: dict[str, Any] = {}
        for sig in SIGNALS:
            t, tuned = _best_threshold(tune, sig, objective)
            t_rev = _best_threshold(test, sig, objective)[0]
            floors[sig] = {
                "floor": round(t, 4),
                f"tune_{name}": round(tuned, 4),
                "test": _prf(test, _below(sig, t)),
                "floor_reverse": round(t_rev, 4),
                "test_reverse": _prf(tune, _below(sig, t_rev)),
            }
        ta, tb, tuned = _best_pair(tune, "dense_top", "extractive_top", objective)
        floors["dense_top+extractive_top"] = {
            "floor": {"dense_top": round(ta, 4), "extractive_top": round(tb, 4)},
            f"tune_{name}": round(tuned, 4),
            "test": _prf(test, _either(_below("dense_top", ta), _below("extractive_top", tb))),
        }
        out[f"floors_max_{name}"] = floors
    out["current_default"] = {
        "relevance_floor": None,
        "extractive_min_score": extractive_default,
        "all": _prf(items, _below("extractive_top", extractive_default)),
        "test": _prf(test, _below("extractive_top", extractive_default)),
    }
    return out


def _quantiles(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {}
    q = np.quantile(np.asarray(values), [0.1, 0.25, 0.5, 0.75, 0.9])
    return {k: round(float(v), 4) for k, v in zip(("p10", "p25", "p50", "p75", "p90"), q, strict=True)}


def _pooled_choice(studies: dict[str, list[Signals]], seed: int) -> dict[str, Any]:
    """One floor per signal for every set (a setting has one value): tuned on the pooled tune halves."""
    halves = {name: _split(items, seed) for name, items in studies.items()}
    pooled = [s for tune, _ in halves.values() for s in tune]
    out: dict[str, Any] = {}
    for name, objective in OBJECTIVES.items():
        chosen: dict[str, Any] = {}
        for sig in SIGNALS:
            t, tuned = _best_threshold(pooled, sig, objective)
            chosen[sig] = {
                "floor": round(t, 4),
                f"tune_{name}": round(tuned, 4),
                "test": {ds: _prf(test, _below(sig, t)) for ds, (_, test) in halves.items()},
            }
        out[f"max_{name}"] = chosen
    return out


def run_floor(args: argparse.Namespace) -> dict[str, Any]:
    from rag.llm.extractive import DEFAULT_MIN_SCORE

    say = _say(args)
    settings = _settings(Path(args.data_dir), **({"fusion": args.fusion} if args.fusion else {}))
    datasets = Path(args.datasets)
    rng = random.Random(args.seed)
    squad_path = datasets / SQUAD
    squad = load_squad(squad_path, name="squad2-dev-all-paragraphs")
    squad_groups = _squad_paragraphs(squad_path)
    clapnq = load_clapnq(datasets / CLAPNQ, name="clapnq-dev")
    clapnq_groups = clapnq_asked_over(datasets / CLAPNQ)
    squad_records = _balanced(squad.records, args.sample, rng)
    target = InProcessTarget(settings, RunOptions())
    started = time.perf_counter()
    try:
        squad_corpus = _ingest(target, squad, say)
        clapnq_corpus = _ingest(target, clapnq, say)
        cache = Path(args.data_dir) / f"floor-signals-{settings.fusion}-{args.sample}-{args.seed}.json"
        studies = _load_signals(cache) if args.reuse_signals and cache.exists() else None
        if studies is None:
            studies = {
                "squad2": _signals(target, squad_corpus, squad_records, squad_groups, say),
                "clapnq": _signals(target, clapnq_corpus, clapnq.records, clapnq_groups, say),
            }
            _save_signals(cache, studies)
    finally:
        asyncio.run(target.aclose())
    payload = _header("python -m eval.experiments floor", settings)
    payload |= {
        "datasets": {
            "squad2": f"SQuAD 2.0 dev ({SQUAD}), all {len(squad.documents)} paragraphs indexed, "
            f"{len(squad_records)} questions sampled (balanced)",
            "clapnq": f"ClapNQ dev ({CLAPNQ}), its {len(clapnq.documents)} passages indexed, every question",
        },
        "signals": {
            "rrf_top": "top RRF fused score: what relevance_floor cuts with fusion=rrf and no re-ranker",
            "weighted_top": "top weighted-fusion score (min-max normalised per query): what relevance_floor "
            "cuts with fusion=weighted and no re-ranker",
            "dense_top": "top dense cosine similarity (no setting floors it today)",
            "lexical_top": "top BM25 score (unnormalised; depends on the question's length)",
            "extractive_top": "the extractive answerer's best sentence score over the packed sources "
            "(what its min_score cuts)",
        },
        "method": "floor = abstain when the signal is below it; chosen on the tune half (split by passage, "
        "seeded) to maximise abstention F1 (floors_max_f1) or decision accuracy (floors_max_accuracy), "
        "scored on the test half; test_reverse swaps the halves. answerable_answered is the share of "
        "answerable questions still answered: the price of the floor",
        "per_set": {name: _study(items, args.seed, DEFAULT_MIN_SCORE) for name, items in studies.items()},
        "one_floor_for_both": _pooled_choice(studies, args.seed),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return payload


def _save_signals(path: Path, studies: dict[str, list[Signals]]) -> None:
    """Keep the per-question signals, so the analysis can be redone without re-answering."""
    rows = {name: [asdict(s) for s in items] for name, items in studies.items()}
    path.write_text(json.dumps(rows), encoding="utf-8")


def _load_signals(path: Path) -> dict[str, list[Signals]]:
    rows = json.loads(path.read_text(encoding="utf-8"))
    return {name: [Signals(**row) for row in items] for name, items in rows.items()}


def _squad_paragraphs(path: Path) -> dict[str, str]:
    """Question id -> its paragraph (unanswerable questions too: the loader keeps no evidence for them)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, str] = {}
    for article in data["data"]:
        for p_idx, paragraph in enumerate(article["paragraphs"]):
            for qa in paragraph["qas"]:
                out[str(qa["id"])] = f"{article['title']}#{p_idx}"
    return out


def _balanced(records: Sequence[Any], sample: int | None, rng: random.Random) -> list[Any]:
    if not sample:
        return list(records)
    half = sample // 2
    yes = [r for r in records if r.answerable]
    no = [r for r in records if not r.answerable]
    return rng.sample(yes, min(half, len(yes))) + rng.sample(no, min(half, len(no)))


# --------------------------------------------------------------------------- entry point


def _say(args: argparse.Namespace) -> Callable[[str], None]:
    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    return say


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.experiments", description=__doc__.splitlines()[0])
    parser.add_argument("experiment", choices=("retrieval", "floor"))
    parser.add_argument("--datasets", default=str(DEFAULT_DATASETS_DIR), help="the shared datasets folder")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA), help="index folder (reused between runs)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="where the JSON goes")
    parser.add_argument(
        "--sample", type=int, default=None, help="questions to use (default: retrieval all, floor 2000)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--reuse-signals", action="store_true", help="floor: analyse the signals saved by the last run"
    )
    parser.add_argument(
        "--fusion", choices=("rrf", "weighted"), help="floor: the fusion whose sources the answerer sees"
    )
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    from rag.logs import configure_logging

    configure_logging("WARNING")
    if args.experiment == "floor" and args.sample is None:
        args.sample = 2000
    started = time.perf_counter()
    payload = run_retrieval(args) if args.experiment == "retrieval" else run_floor(args)
    payload["wall_s"] = round(time.perf_counter() - started, 1)
    path = _write(Path(args.out), args.experiment, payload)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
