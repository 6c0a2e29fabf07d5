"""From what the system did on each question to every figure of a report.

The runner records one ``QuestionOutcome`` per golden question (answer, abstention, citations,
ranked retrieval, timings, usage); ``summarize`` scores them all with the pure metrics and puts
confidence intervals on the headline figures. Everything here is plain data, so a summary
round-trips through JSON and a baseline can be compared with a later run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, Field

from eval.golden import GoldenRecord, GoldenSet, page_key
from eval.metrics import answers as am
from eval.metrics import ops
from eval.metrics import retrieval as rm
from eval.metrics.citations import Cited, Gold, citation_scores, mean_defined
from eval.metrics.grounding import groundedness, judge_agreement, split_sentences
from eval.stats import Estimate, bootstrap_mean, bootstrap_statistic
from rag.errors import InvalidRequest

DEFAULT_KS = (1, 3, 5, 10, 20, 50, 100)
RETRIEVAL_HEADLINE = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10", "recall@100")
PAGE_HEADLINE = ("hit@1", "hit@5", "hit@10", "mrr@10", "ndcg@10")
"""Page-level figures reported for sets whose evidence names pages (recall@100 is doc-level only)."""


class CitedSource(BaseModel):
    """A source the answer cites, by golden document id (the name it was ingested under)."""

    doc: str
    pages: list[int] = Field(default_factory=list)
    text: str = ""


class RetrievedItem(BaseModel):
    """One retrieved chunk, best first; ``doc`` is the golden document id."""

    doc: str
    pages: list[int] = Field(default_factory=list)
    score: float = 0.0
    chunk_id: str | None = None


class QuestionOutcome(BaseModel):
    """What the system did with one golden question."""

    id: str
    answer: str = ""
    abstained: bool = False
    citations: list[CitedSource] = Field(default_factory=list)
    retrieved: list[RetrievedItem] = Field(default_factory=list)
    timings_ms: dict[str, float] = Field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    cached: bool = False
    provider: str | None = None
    error: str | None = None
    judge_groundedness: float | None = None
    asked: bool = True
    """False in a retrieval-only run (``answers=off``): there is no answer to score."""


class MetricValue(BaseModel):
    value: float
    low: float | None = None
    high: float | None = None
    n: int = 0

    @classmethod
    def of(cls, est: Estimate) -> MetricValue:
        return cls(value=est.value, low=est.low, high=est.high, n=est.n)


class QuestionScores(BaseModel):
    id: str
    question: str
    answerable: bool
    answer: str
    abstained: bool
    error: str | None = None
    scores: dict[str, float | None] = Field(default_factory=dict)


class EvalSummary(BaseModel):
    set_name: str
    kind: str
    created_at: str
    config: dict[str, Any] = Field(default_factory=dict)
    counts: dict[str, int] = Field(default_factory=dict)
    headline: dict[str, MetricValue] = Field(default_factory=dict)
    answers: dict[str, float | None] = Field(default_factory=dict)
    retrieval_at_k: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)
    ops: dict[str, Any] = Field(default_factory=dict)
    questions: list[QuestionScores] = Field(default_factory=list)


def _f1_statistic(unanswerable: np.ndarray, abstained: np.ndarray) -> float:
    score = am.abstention_scores(list(unanswerable.astype(bool)), list(abstained.astype(bool))).f1
    return 0.0 if score is None else score


def _answer_scores(record: GoldenRecord, outcome: QuestionOutcome) -> dict[str, float | None]:
    failed = outcome.error is not None
    em = 0.0 if failed else am.exact_match(outcome.answer, record.answers, abstained=outcome.abstained)
    f1 = 0.0 if failed else am.token_f1(outcome.answer, record.answers, abstained=outcome.abstained)
    scores: dict[str, float | None] = {"em": em, "f1": f1}
    if record.answerable:
        numeric = am.numeric_match(outcome.answer, record.answers)
        scores["numeric_match"] = (
            None if numeric is None else (0.0 if failed or outcome.abstained else numeric)
        )
        cited = [Cited(c.doc, tuple(c.pages)) for c in outcome.citations]
        gold = [Gold(e.doc, e.page) for e in record.evidence if e.relevance > 0]
        doc_level = citation_scores(cited, gold, level="doc")
        page_level = citation_scores(cited, gold, level="page")
        scores |= {
            "citation_precision": doc_level.precision,
            "citation_recall": doc_level.recall,
            "page_citation_precision": page_level.precision,
            "page_citation_recall": page_level.recall,
        }
    if not failed and not outcome.abstained and outcome.answer.strip():
        sources = [c.text for c in outcome.citations if c.text]
        scores["groundedness"] = groundedness(split_sentences(outcome.answer), sources)
        scores["judge_groundedness"] = outcome.judge_groundedness
    return scores


def summarize(
    golden: GoldenSet,
    outcomes: Sequence[QuestionOutcome],
    *,
    config: Mapping[str, Any] | None = None,
    ks: Sequence[int] = DEFAULT_KS,
    seed: int = 0,
    n_resamples: int = 1000,
) -> EvalSummary:
    """Score every outcome against its golden record; a question without an outcome is a failure."""
    by_id = {o.id: o for o in outcomes}
    unknown = set(by_id) - {r.id for r in golden.records}
    if unknown:
        raise InvalidRequest(f"outcomes for questions not in set {golden.name!r}: {sorted(unknown)[:5]}")
    filled = [
        by_id.get(r.id) or QuestionOutcome(id=r.id, error="no outcome recorded") for r in golden.records
    ]

    per_q: dict[str, dict[str, float | None]] = {r.id: {} for r in golden.records}
    headline: dict[str, MetricValue] = {}
    breakdown: dict[str, float | None] = {}
    curves: dict[str, dict[str, dict[str, float]]] = {}

    # --- retrieval ---------------------------------------------------------------
    any_retrieval = any(o.retrieved for o in filled)
    levels: tuple[Literal["doc", "page"], ...] = ("doc", "page")
    for level in levels:
        qrels = golden.qrels(level)
        if not qrels or not any_retrieval:
            continue
        ranked = {
            o.id: [page_key(r.doc, p) for r in o.retrieved for p in r.pages]
            if level == "page"
            else [r.doc for r in o.retrieved]
            for o in filled
        }
        run = rm.ranked_run(ranked)
        curves[level] = {
            name: {str(k): rm.evaluate(run, qrels, [f"{name}@{k}"])[f"{name}@{k}"] for k in ks}
            for name in ("hit", "recall", "ndcg")
        }
        prefix = "" if level == "doc" else "page_"
        for metric in RETRIEVAL_HEADLINE:
            values = rm.per_query(metric, run, qrels)
            for qid, v in values.items():
                per_q[qid][prefix + metric] = v
            est = bootstrap_mean(list(values.values()), n_resamples=n_resamples, seed=seed)
            if est is not None and (level == "doc" or metric in PAGE_HEADLINE):
                headline[prefix + metric] = MetricValue.of(est)

    # --- answers -----------------------------------------------------------------
    if golden.kind == "qa" and any(o.asked for o in filled):
        for record, outcome in zip(golden.records, filled, strict=True):
            per_q[record.id] |= _answer_scores(record, outcome)
        for name in ("em", "f1"):
            _headline_mean(headline, name, [per_q[r.id][name] for r in golden.records], seed, n_resamples)
            for tag, want in (("has_ans_", True), ("no_ans_", False)):
                breakdown[tag + name] = mean_defined(
                    [per_q[r.id][name] for r in golden.records if r.answerable == want]
                )
        unanswerable = [not r.answerable for r in golden.records]
        abstained = [o.abstained and o.error is None for o in filled]
        prf = am.abstention_scores(unanswerable, abstained)
        breakdown |= {"abstention_precision": prf.precision, "abstention_recall": prf.recall}
        if prf.f1 is not None:
            est = bootstrap_statistic(
                [[float(u) for u in unanswerable], [float(a) for a in abstained]],
                _f1_statistic,
                n_resamples=n_resamples,
                seed=seed,
            )
            if est is not None:
                headline["abstention_f1"] = MetricValue.of(est)
        for name in (
            "citation_precision",
            "citation_recall",
            "page_citation_precision",
            "page_citation_recall",
            "groundedness",
            "numeric_match",
            "judge_groundedness",
        ):
            _headline_mean(headline, name, [per_q[r.id].get(name) for r in golden.records], seed, n_resamples)
        judged = [
            (g, j)
            for s in per_q.values()
            if (g := s.get("groundedness")) is not None and (j := s.get("judge_groundedness")) is not None
        ]
        if judged:
            breakdown["judge_agreement"] = judge_agreement([p for p, _ in judged], [j for _, j in judged])

    # --- operations ----------------------------------------------------------------
    ok = [o for o in filled if o.error is None]
    operations: dict[str, Any] = {
        "latency_ms": ops.latency_by_stage([o.timings_ms for o in ok if o.timings_ms]),
        "input_tokens_mean": ops.mean([o.input_tokens for o in ok]),
        "output_tokens_mean": ops.mean([o.output_tokens for o in ok]),
        "cost_per_100": ops.cost_per_100([o.cost for o in ok]),
        "cache_hit_rate": ops.cache_hit_rate([o.cached for o in ok]),
        "providers": ops.provider_counts([o.provider for o in ok]),
        "errors": len(filled) - len(ok),
    }

    questions = [
        QuestionScores(
            id=r.id,
            question=r.question,
            answerable=r.answerable,
            answer=o.answer,
            abstained=o.abstained,
            error=o.error,
            scores=per_q[r.id],
        )
        for r, o in zip(golden.records, filled, strict=True)
    ]
    return EvalSummary(
        set_name=golden.name,
        kind=golden.kind,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config=dict(config or {}),
        counts={
            "questions": len(golden.records),
            "answerable": golden.answerable_count,
            "unanswerable": len(golden.records) - golden.answerable_count,
            "documents": len(golden.documents),
            "errors": operations["errors"],
        },
        headline=headline,
        answers=breakdown,
        retrieval_at_k=curves,
        ops=operations,
        questions=questions,
    )


def _headline_mean(
    headline: dict[str, MetricValue], name: str, values: Sequence[float | None], seed: int, n_resamples: int
) -> None:
    kept = [v for v in values if v is not None]
    est = bootstrap_mean(kept, n_resamples=n_resamples, seed=seed)
    if est is not None:
        headline[name] = MetricValue.of(est)
