"""Abstention: ``python -m eval.experiments floor``.

Which signal tells an answerable question from an unanswerable one (SQuAD 2.0 and ClapNQ dev):
the top fused score (what ``relevance_floor`` cuts when no re-ranker is loaded), the top dense
cosine, the top BM25 score, and the extractive answerer's best sentence score (what its
``min_score`` cuts). Each threshold is chosen on one half of the questions (split by passage, so
no passage is in both) and scored on the other.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from eval.experiments.common import (
    CLAPNQ,
    SQUAD,
    Corpus,
    Say,
    experiment_settings,
    header,
    ingest,
    progress,
    retrieve_all,
)
from eval.golden import clapnq_asked_over, load_clapnq, load_squad
from eval.metrics.answers import abstention_scores
from eval.runner import InProcessTarget, RunOptions
from rag.fusion import fuse

SIGNALS = ("rrf_top", "weighted_top", "dense_top", "lexical_top", "extractive_top")


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
    say: Say,
) -> list[Signals]:
    """Every signal for every question, from the pipeline's own steps (no re-ranker, no floor)."""
    from rag.llm.extractive import ExtractiveAnswerer
    from rag.packing import Candidate, ContextPacker

    s = target.settings
    packer = ContextPacker(s.context_budget_tokens, encoding=s.tiktoken_encoding)
    answerer = ExtractiveAnswerer(s.embedding_model, device=s.embedding_device)
    # the configured fusion's top_k fetched, as the pipeline packs them: the sources the answerer sees
    retrieved, _ = retrieve_all(target, corpus, [r.question for r in records], say, k=s.top_k)
    out: list[Signals] = []
    for i, (record, r) in enumerate(zip(records, retrieved, strict=True), 1):
        rrf = fuse(r.dense, r.lexical, "rrf", rrf_k=s.rrf_k)
        weighted = fuse(r.dense, r.lexical, "weighted", dense_weight=s.fusion_dense_weight)
        packed = packer.pack([Candidate(x.stored, x.score) for x in r.ranked])
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

    say = progress(args)
    settings = experiment_settings(Path(args.data_dir), **({"fusion": args.fusion} if args.fusion else {}))
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
        squad_corpus = ingest(target, squad, say)
        clapnq_corpus = ingest(target, clapnq, say)
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
    payload = header("python -m eval.experiments floor", settings)
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
