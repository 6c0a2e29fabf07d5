"""Scoring a run end to end, the reports it writes, and the baseline gate."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from eval.golden import EvidenceRef, GoldenRecord, GoldenSet, SourceDocument
from eval.metrics.summary import CitedSource, MetricValue, QuestionOutcome, RetrievedItem, summarize
from eval.report import (
    compare_to_baseline,
    comparison_markdown,
    format_summary,
    headline_values,
    load_report,
    write_report,
)
from rag.errors import InvalidRequest

GOLDEN = GoldenSet(
    name="tiny",
    kind="qa",
    documents=[
        SourceDocument(id="a.pdf", text="Normandy is in France."),
        SourceDocument(id="b.txt", text="Capex was $1,577 million."),
        SourceDocument(id="c.txt", text="Unrelated."),
    ],
    records=[
        GoldenRecord(
            id="r1",
            question="Where is Normandy?",
            answers=["France"],
            evidence=[EvidenceRef(doc="a.pdf", page=2)],
        ),
        GoldenRecord(
            id="r2", question="Capex?", answers=["$1,577 million"], evidence=[EvidenceRef(doc="b.txt")]
        ),
        GoldenRecord(id="r3", question="Who is king of Mars?", answerable=False),
        GoldenRecord(id="r4", question="Capital of Atlantis?", answerable=False),
    ],
)
OUTCOMES = [
    QuestionOutcome(
        id="r1",
        answer="France",
        citations=[CitedSource(doc="a.pdf", pages=[2], text="Normandy is in France.")],
        retrieved=[RetrievedItem(doc="a.pdf", pages=[2]), RetrievedItem(doc="b.txt", pages=[1])],
        timings_ms={"retrieve": 10, "generate": 30},
        cost=0.001,
        provider="openai",
    ),
    QuestionOutcome(
        id="r2",
        answer="It was 1,577 [1].",
        citations=[CitedSource(doc="c.txt", pages=[1])],
        retrieved=[RetrievedItem(doc="c.txt"), RetrievedItem(doc="b.txt")],
        timings_ms={"retrieve": 20, "generate": 50},
        cost=0.002,
        cached=True,
        provider="openai",
    ),
    QuestionOutcome(id="r3", abstained=True, timings_ms={"retrieve": 30}, provider="extractive"),
    QuestionOutcome(id="r4", answer="Paris", timings_ms={"retrieve": 40, "generate": 10}, cost=0.001),
]


@pytest.fixture(scope="module")
def summary():
    return summarize(GOLDEN, OUTCOMES, config={"fusion": "rrf"}, n_resamples=200)


def test_headline_by_hand(summary) -> None:
    h = {k: v.value for k, v in summary.headline.items()}
    # EM: r1 1, r2 0, r3 (abstained, unanswerable) 1, r4 0
    assert h["em"] == 0.5
    # F1 of r2: pred [it, was, 1577, 1] vs gold [1577, million]: P 1/4, R 1/2 -> 1/3
    assert h["f1"] == pytest.approx((1 + 1 / 3 + 1 + 0) / 4)
    # abstention: tp 1 (r3), fp 0, fn 1 (r4) -> P 1, R 1/2, F1 2/3
    assert h["abstention_f1"] == pytest.approx(2 / 3)
    assert summary.answers["abstention_precision"] == 1.0
    assert summary.answers["abstention_recall"] == 0.5
    assert summary.answers["has_ans_em"] == 0.5 and summary.answers["no_ans_em"] == 0.5
    # citations: r1 right (1, 1), r2 wrong document (0, 0); pages only judged on r1
    assert (h["citation_precision"], h["citation_recall"]) == (0.5, 0.5)
    assert (h["page_citation_precision"], h["page_citation_recall"]) == (1.0, 1.0)
    # retrieval over the answerable: r1 gold at rank 1, r2 at rank 2
    assert (h["hit@5"], h["mrr@10"]) == (1.0, 0.75)
    assert h["page_hit@5"] == 1.0
    # groundedness: r1 supported (1), r2 cites no text (0), r4 cites nothing (0)
    assert h["groundedness"] == pytest.approx(1 / 3)
    assert h["numeric_match"] == 1.0  # only r2 has a numeric gold
    for metric in summary.headline.values():
        assert (
            metric.low is not None and metric.high is not None and metric.low <= metric.value <= metric.high
        )


def test_operations_by_hand(summary) -> None:
    lat = summary.ops["latency_ms"]
    assert lat["retrieve"]["p50"] == 25.0 and lat["retrieve"]["p95"] == pytest.approx(38.5)
    assert lat["generate"]["p50"] == 30.0 and lat["generate"]["n"] == 3
    assert summary.ops["cost_per_100"] == pytest.approx(0.1)
    assert summary.ops["cache_hit_rate"] == 0.25
    assert summary.ops["providers"] == {"openai": 2, "extractive": 1, "none": 1}
    assert summary.retrieval_at_k["doc"]["hit"]["1"] == 0.5


def test_missing_outcome_counts_as_a_failure() -> None:
    s = summarize(GOLDEN, OUTCOMES[:3], n_resamples=50)
    assert s.counts["errors"] == 1
    assert s.headline["em"].value == 0.5  # r4 now an error: 0, as before
    assert s.questions[3].error == "no outcome recorded"
    with pytest.raises(InvalidRequest):
        summarize(GOLDEN, [QuestionOutcome(id="nope")])


def test_write_report_files(summary, tmp_path: Path) -> None:
    when = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    paths = write_report(summary, tmp_path, "tiny set", now=when)
    assert paths.json.name == "tiny-set-20240501T120000Z.json"
    assert load_report(paths.json) == summary
    md = paths.markdown.read_text(encoding="utf-8")
    assert re.search(r"\| em \| 0\.500 \|", md)
    page = paths.html.read_text(encoding="utf-8")
    assert page.count("<svg") >= 3  # latency, metrics against k, distributions
    assert "<script" not in page and "<link" not in page
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}
    again = write_report(summary, tmp_path, "tiny set", now=when)
    assert again.json != paths.json  # never overwrites


def test_terminal_summary_fits_a_screen(summary) -> None:
    text = format_summary(summary)
    assert len(text.splitlines()) <= 30
    assert re.search(r"^  em\s+0\.500  \[", text, re.M)
    assert "retrieve 25/38" in text


def test_baseline_gate(summary) -> None:
    assert compare_to_baseline(summary, summary) == []
    worse = summary.model_copy(deep=True)
    em = summary.headline["em"]
    worse.headline["em"] = MetricValue(value=em.low - 0.01, low=em.low - 0.02, high=em.low)
    within = summary.model_copy(deep=True)
    within.headline["f1"] = MetricValue(value=summary.headline["f1"].value - 0.01, low=0.0, high=1.0)
    del within.headline["mrr@10"]
    assert [r.metric for r in compare_to_baseline(worse, summary)] == ["em"]
    regressions = compare_to_baseline(within, json.loads(summary.model_dump_json()))
    assert [(r.metric, r.current) for r in regressions] == [("mrr@10", None)]
    assert "missing" in regressions[0].describe()
    with pytest.raises(InvalidRequest):
        compare_to_baseline(summary, summary, metrics=["nope"])


def test_headline_values_for_json(summary) -> None:
    values = headline_values(summary)
    assert {"em", "f1", "abstention_f1", "citation_precision", "citation_recall"} <= set(values)
    assert values["em"] == 0.5
    assert json.loads(json.dumps(values)) == values


def test_comparison_table(summary) -> None:
    table = comparison_markdown(summary, summary, ("dense", "hybrid"))
    assert "| em | 0.500 | 0.500 | 0.000 | yes |" in table
