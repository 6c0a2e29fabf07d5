"""Questions that name a financial statement, and the chunks titled as it."""

from __future__ import annotations

import pytest

from rag.fusion import FusedHit
from rag.retrieval import Ranked, boost_statements
from rag.statements import implied_statements, named_statements, statement_of
from rag.types import Chunk, StoredChunk


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        (
            "What is the FY2018 capex for 3M? Rely on the details shown in the cash flow statement.",
            {"cash_flow"},
        ),
        ("Using the statement of cash flows, ...", {"cash_flow"}),
        ("what is Boeing's net PPNE? Use the balance sheet.", {"balance"}),
        ("stated only in the statement of financial position", {"balance"}),
        ("Provide a response by primarily using the statement of income.", {"income"}),
        ("From the P&L and the balance sheet, ...", {"income", "balance"}),
        ("Is Boeing's business subject to cyclicality?", set()),
        ("How did cash flows from operations change?", set()),
    ],
)
def test_the_statements_a_question_names(question: str, kinds: set[str]) -> None:
    assert named_statements(question) == kinds


def test_a_chunk_is_a_statement_by_its_title_not_by_a_sentence_that_mentions_one() -> None:
    assert statement_of(
        "BOEING 10-K FY2018 | Consolidated Statements of Financial Position | page 52", "", {"balance"}
    )
    assert statement_of(
        "MICROSOFT 10-K | ITEM 8. | page 52",
        "ITEM 8. FINANCIAL STATEMENTS\nINCOME STATEMENTS\n(In millions)",
        {"income"},
    )
    assert statement_of(
        "3M 10-K", "Consolidated Statement of Cash Flows\nYears ended December 31", {"cash_flow"}
    )
    prose = (
        "Revenue recognised in the period is presented in the consolidated statements of operations as"
        " product and service revenue, as described in Note 2 to these financial statements."
    )
    assert not statement_of("3M 10-K | Notes | page 70", prose, {"income"})
    assert not statement_of("Consolidated Statement of Cash Flows", "", {"balance"})


def _ranked(n: int, fused: float, context: str) -> Ranked:
    chunk = Chunk(f"d:{n:06d}", "d", n, "rows", 1, 1, 0, 4, 1, context=context)
    return Ranked(FusedHit(chunk.id, "d", fused), StoredChunk(chunk, "d", "c", "sha"))


def test_boosting_raises_the_statement_and_leaves_the_others_in_order() -> None:
    ranked = [
        _ranked(0, 0.9, "MD&A"),
        _ranked(1, 0.8, "Notes"),
        _ranked(2, 0.5, "Consolidated Balance Sheets"),
    ]
    order = boost_statements(ranked, frozenset({"balance"}), 1.0)
    assert [r.stored.chunk.ordinal for r in order] == [2, 0, 1]
    assert order[0].score == pytest.approx(1.0)
    assert [r.stored.chunk.ordinal for r in boost_statements(ranked, frozenset({"income"}), 1.0)] == [2, 0, 1]


@pytest.mark.parametrize(
    ("question", "kinds"),
    [
        ("How has Apple's total net sales changed over time?", {"income"}),
        ("How have NVIDIA's inventory levels changed during these quarters?", {"balance"}),
        ("What was 3M's capex in 2018?", {"cash_flow"}),
        ("What was 3M's capex in 2018 per the cash flow statement?", set()),  # named, not implied
        ("Is Boeing's business subject to cyclicality?", set()),
    ],
)
def test_the_statements_a_question_implies_by_their_line_items(question: str, kinds: set[str]) -> None:
    assert implied_statements(question) == kinds
