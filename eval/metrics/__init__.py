"""Pure metric functions (retrieval, answers, citations, grounding, operations) and the summary."""

from eval.metrics.answers import abstention_scores, exact_match, normalize_answer, numeric_match, token_f1
from eval.metrics.citations import Cited, Gold, citation_scores
from eval.metrics.grounding import groundedness, judge_agreement, sentence_support, split_sentences
from eval.metrics.retrieval import evaluate, hit_at_k, mrr_at_k, ndcg_at_k, per_query, ranked_run, recall_at_k

__all__ = [
    "Cited",
    "Gold",
    "abstention_scores",
    "citation_scores",
    "evaluate",
    "exact_match",
    "groundedness",
    "hit_at_k",
    "judge_agreement",
    "mrr_at_k",
    "ndcg_at_k",
    "normalize_answer",
    "numeric_match",
    "per_query",
    "ranked_run",
    "recall_at_k",
    "sentence_support",
    "split_sentences",
    "token_f1",
]
