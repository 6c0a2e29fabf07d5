"""Our retrieval metrics against ranx, and the BEIR must-show: BM25 on a BEIR-format set built
from ClapNQ, scored through our loader and metrics, within 0.01 nDCG@10 of an independent
computation (rank_bm25 over the raw files, scored by ranx).
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from eval.golden import load_beir, load_clapnq, load_set
from eval.metrics import retrieval as rm

pytestmark = pytest.mark.slow  # ranx compiles its metrics with numba on first use

OURS_TO_RANX = {
    "ndcg@10": "ndcg@10",
    "ndcg@3": "ndcg@3",
    "mrr@10": "mrr@10",
    "recall@5": "recall@5",
    "recall@20": "recall@20",
    "precision@5": "precision@5",
    "hit@5": "hit_rate@5",
}


def _ranx(qrels: dict, run: dict, metrics: list[str]) -> dict[str, float]:
    from ranx import Qrels, Run, evaluate

    scores = evaluate(Qrels(qrels), Run(run), metrics, make_comparable=True)
    return {m: float(scores[m]) for m in metrics} if isinstance(scores, dict) else {metrics[0]: float(scores)}


def test_metrics_match_ranx_on_a_graded_fixture() -> None:
    rng = np.random.default_rng(42)
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for q in range(40):
        docs = [f"d{i}" for i in rng.permutation(60)]
        n_rel = int(rng.integers(1, 8))
        qrels[f"q{q}"] = {doc: int(rng.integers(1, 4)) for doc in docs[:n_rel]}
        scores = rng.permutation(60).astype(float) + rng.uniform(size=60) * 0.5  # distinct: no ties
        run[f"q{q}"] = {f"d{i}": float(s) for i, s in enumerate(scores[:30])}
    ours = rm.evaluate(run, qrels, list(OURS_TO_RANX))
    theirs = _ranx(qrels, run, list(OURS_TO_RANX.values()))
    for metric, ranx_name in OURS_TO_RANX.items():
        assert ours[metric] == pytest.approx(theirs[ranx_name], abs=1e-9), metric
    assert 0.0 < ours["ndcg@10"] < 1.0  # the fixture is neither trivial nor hopeless


def _tokens(text: str, stopwords: frozenset[str]) -> list[str]:
    return [w for w in re.findall(r"(?u)\b\w\w+\b", text.lower()) if w not in stopwords]


def _write_beir_from_clapnq(clapnq_dir: Path, out: Path) -> None:
    """corpus = the passages, queries = the answerable questions, qrels = each question's passage."""
    golden = load_clapnq(clapnq_dir)
    (out / "qrels").mkdir(parents=True)
    with (out / "corpus.jsonl").open("w", encoding="utf-8") as fh:
        for doc in golden.documents:
            title, _, text = (doc.text or "").partition("\n\n")
            fh.write(json.dumps({"_id": doc.id.removesuffix(".txt"), "title": title, "text": text}) + "\n")
    answerable = [r for r in golden.records if r.answerable]
    with (out / "queries.jsonl").open("w", encoding="utf-8") as fh:
        for r in answerable:
            fh.write(json.dumps({"_id": r.id, "text": r.question}) + "\n")
    with (out / "qrels" / "test.tsv").open("w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        for r in answerable:
            fh.write(f"{r.id}\t{r.evidence[0].doc.removesuffix('.txt')}\t1\n")


def test_beir_bm25_reproduces_an_independent_computation(datasets: Path, tmp_path: Path) -> None:
    import bm25s
    from bm25s.stopwords import STOPWORDS_EN
    from rank_bm25 import BM25Okapi

    beir = tmp_path / "clapnq-beir"
    _write_beir_from_clapnq(datasets / "clapnq_dev", beir)
    stop = frozenset(STOPWORDS_EN)

    # independent: the raw files read directly, rank_bm25 (Okapi), scored by ranx
    corpus = [json.loads(line) for line in (beir / "corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    queries = [json.loads(line) for line in (beir / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    with (beir / "qrels" / "test.tsv").open(encoding="utf-8") as fh:
        raw_qrels: dict[str, dict[str, int]] = {}
        for row in csv.DictReader(fh, delimiter="\t"):
            raw_qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    ids = [d["_id"] for d in corpus]
    okapi = BM25Okapi([_tokens(f"{d['title']}\n\n{d['text']}", stop) for d in corpus])
    independent_run = {}
    for q in queries:
        scores = okapi.get_scores(_tokens(q["text"], stop))
        top = np.argsort(-scores, kind="stable")[:100]
        # scores by position: tools break score ties differently, positions leave nothing to break
        independent_run[q["_id"]] = {ids[i]: float(100 - rank) for rank, i in enumerate(top)}
    independent = _ranx(raw_qrels, independent_run, ["ndcg@10"])["ndcg@10"]

    # ours: the BEIR loader, bm25s, our metrics
    golden = load_set(beir)
    assert golden == load_beir(beir) and len(golden.records) == len(queries) == 300
    texts = [d.text or "" for d in golden.documents]
    retriever = bm25s.BM25(k1=1.5, b=0.75)
    retriever.index(bm25s.tokenize(texts, stopwords="en", show_progress=False), show_progress=False)
    questions = [r.question for r in golden.records]
    hits, scores = retriever.retrieve(
        bm25s.tokenize(questions, stopwords="en", show_progress=False), k=100, show_progress=False
    )
    doc_ids = [d.id for d in golden.documents]
    our_run = {
        r.id: {doc_ids[j]: float(s) for j, s in zip(hits[i], scores[i], strict=True)}
        for i, r in enumerate(golden.records)
    }
    ours = rm.evaluate(our_run, golden.qrels(), ["ndcg@10"])["ndcg@10"]

    assert abs(ours - independent) <= 0.01, (ours, independent)
    # and the metric alone agrees exactly with ranx on the same run
    assert rm.evaluate(independent_run, raw_qrels, ["ndcg@10"])["ndcg@10"] == pytest.approx(
        independent, abs=1e-9
    )
    assert independent > 0.5  # BM25 works on this set: the comparison is not between two failures
