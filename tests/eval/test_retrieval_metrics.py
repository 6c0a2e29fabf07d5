"""Retrieval metrics against values worked out by hand (BEIR/TREC definitions)."""

from __future__ import annotations

import pytest

from eval.metrics import retrieval as rm
from rag.errors import InvalidRequest

# q1: ranking d2, d1, d4, d3 with d1 (rel 1) at rank 2 and d3 (rel 2) at rank 4.
# q2: its only relevant document d5 is never retrieved.
QRELS = {"q1": {"d1": 1, "d3": 2, "d9": 0}, "q2": {"d5": 1}, "q3": {"d7": 0}}
RUN = {"q1": {"d2": 0.9, "d1": 0.8, "d4": 0.7, "d3": 0.6}, "q2": {"d1": 0.5}}

# nDCG@10 of q1 by hand: DCG = 1/log2(3) + 2/log2(5) = 0.63093 + 0.86135 = 1.49228;
# ideal = 2/log2(2) + 1/log2(3) = 2.63093; nDCG = 0.56720. q2 scores 0.
NDCG_Q1 = 0.56720


def test_per_query_values_by_hand() -> None:
    assert rm.per_query("ndcg@10", RUN, QRELS) == {"q1": pytest.approx(NDCG_Q1, abs=1e-5), "q2": 0.0}
    assert rm.per_query("mrr@10", RUN, QRELS) == {"q1": 0.5, "q2": 0.0}
    assert rm.per_query("hit@1", RUN, QRELS)["q1"] == 0.0
    assert rm.per_query("hit@2", RUN, QRELS)["q1"] == 1.0
    assert rm.per_query("recall@2", RUN, QRELS)["q1"] == 0.5
    assert rm.per_query("recall@4", RUN, QRELS)["q1"] == 1.0
    assert rm.per_query("precision@2", RUN, QRELS)["q1"] == 0.5
    # P@k divides by k even when fewer were retrieved (trec_eval's P_10)
    assert rm.per_query("precision@10", RUN, QRELS)["q1"] == 0.2


def test_means_skip_queries_without_relevant_documents() -> None:
    # q3 has only a non-relevant judgement: it does not count; q2 (missing from the run) counts as 0
    scores = rm.evaluate(RUN, QRELS, ["ndcg@10", "mrr@10", "hit@2", "recall@100"])
    assert scores["ndcg@10"] == pytest.approx(NDCG_Q1 / 2, abs=1e-5)
    assert scores["mrr@10"] == 0.25
    assert scores["hit@2"] == 0.5
    assert scores["recall@100"] == 0.5


def test_cutoff_truncates_the_ranking() -> None:
    # with k=3 the rel-2 document at rank 4 is cut: DCG = 1/log2(3), ideal at 3 = 2 + 1/log2(3)
    assert rm.ndcg_at_k(["d2", "d1", "d4", "d3"], QRELS["q1"], 3) == pytest.approx(
        0.63093 / 2.63093, abs=1e-5
    )
    assert rm.mrr_at_k(["x", "y", "d1"], {"d1": 1}, 2) == 0.0


def test_ties_break_by_document_id_descending() -> None:
    assert rm.ranking({"a": 1.0, "c": 1.0, "b": 2.0}) == ["b", "c", "a"]


def test_ranked_run_keeps_the_first_position_of_each_id() -> None:
    run = rm.ranked_run({"q": ["d2", "d1", "d2", "d3"]})
    assert rm.ranking(run["q"]) == ["d2", "d1", "d3"]


def test_unknown_metric_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest):
        rm.parse_metric("map@10")
    with pytest.raises(InvalidRequest):
        rm.parse_metric("ndcg")
