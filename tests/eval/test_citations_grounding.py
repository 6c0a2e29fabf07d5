"""Citation precision/recall and the groundedness proxy against values worked out by hand."""

from __future__ import annotations

import pytest

from eval.metrics.citations import Cited, Gold, citation_scores, mean_defined
from eval.metrics.grounding import (
    content_tokens,
    groundedness,
    judge_agreement,
    judge_prompt,
    parse_judge,
    sentence_support,
    split_sentences,
)

GOLD = [Gold("a.pdf", 4), Gold("a.pdf", 10), Gold("b.pdf", None)]


def test_document_level() -> None:
    # cited: a (pages 4-5), a again (counts once), c (wrong) -> precision 1/2; gold docs {a, b}: recall 1/2
    cited = [Cited("a.pdf", (4, 5)), Cited("a.pdf", (4, 5)), Cited("c.pdf", (1,))]
    score = citation_scores(cited, GOLD, level="doc")
    assert (score.precision, score.recall) == (0.5, 0.5)


def test_page_level() -> None:
    # judged sources: a p4-5 (right), a p7 (wrong page), c p1 (wrong document); b has no page labels so
    # b p2 is not judged -> precision 1/3. Paged gold (a,4) covered, (a,10) not -> recall 1/2.
    cited = [Cited("a.pdf", (4, 5)), Cited("a.pdf", (7,)), Cited("c.pdf", (1,)), Cited("b.pdf", (2,))]
    score = citation_scores(cited, GOLD, level="page")
    assert score.precision == pytest.approx(1 / 3)
    assert score.recall == 0.5


def test_undefined_ratios_are_none() -> None:
    assert citation_scores([], GOLD, level="doc").precision is None
    assert citation_scores([], GOLD, level="doc").recall == 0.0
    assert citation_scores([Cited("a.pdf", (1,))], [Gold("a.pdf")], level="page") == citation_scores(
        [], [], level="page"
    )
    assert citation_scores([], [Gold("a.pdf")], level="page").recall is None
    assert mean_defined([None, 1.0, 0.0, None]) == 0.5
    assert mean_defined([None]) is None


SOURCE = "Apple's total net sales were $81,797 million for the quarter ended July 1, 2023."


def test_content_tokens_drop_stopwords_marks_and_separators() -> None:
    assert content_tokens("The sales were $81,797 million [1].") == ["sales", "81797", "million"]


def test_sentence_support_by_hand() -> None:
    # tokens: total, net, sales, 81797, million -> all 5 in the source
    assert sentence_support("Total net sales were $81,797 million [1].", SOURCE) == 1.0
    # tokens: net, sales, grew, sharply -> 2 of 4 in the source
    assert sentence_support("Net sales grew sharply.", SOURCE) == 0.5
    # a changed figure is unsupported whatever the overlap
    assert sentence_support("Total net sales were $82,959 million.", SOURCE) == 0.0


def test_groundedness_share_of_supported_sentences() -> None:
    sentences = ["Total net sales were $81,797 million [1].", "Net sales grew sharply.", "[2]"]
    # "[2]" has no content and is not judged; 1 of the other 2 is supported at threshold 0.6
    assert groundedness(sentences, [SOURCE]) == 0.5
    assert groundedness(sentences, [SOURCE], threshold=0.5) == 1.0
    assert groundedness(sentences, []) == 0.0
    assert groundedness(["[1]"], [SOURCE]) is None


def test_split_sentences_keeps_decimals_and_abbreviations() -> None:
    text = "Revenue was $81.8 billion, per the U.S. filing. Margins fell."
    assert split_sentences(text) == ["Revenue was $81.8 billion, per the U.S. filing.", "Margins fell."]


def test_judge_agreement() -> None:
    assert judge_agreement([1.0, 0.2, 0.7, 0.0], [0.9, 0.6, 0.8, 0.1]) == 0.75
    assert judge_agreement([], []) is None


def test_judge_prompt_is_pinned_and_replies_are_parsed_strictly() -> None:
    system, user = judge_prompt(["Sales were $81,797 million."], [SOURCE])
    assert "JSON only" in system
    assert user.endswith("Statements:\n1. Sales were $81,797 million.") and "[1] Apple's" in user
    assert parse_judge('Sure: {"supported": [true, false]}', 2) == 0.5
    assert parse_judge('{"supported": [true]}', 2) is None  # wrong count
    assert parse_judge('{"supported": ["yes", true]}', 2) is None
    assert parse_judge("no json here", 1) is None
