"""The finance vocabulary: filings' names appended to the keyword query, never replacing it."""

from __future__ import annotations

import pytest

from rag.index.analyzer import analyze
from rag.vocabulary import query_vocabulary

FINANCE = query_vocabulary("finance")
GENERIC = set(analyze("consolidated statements"))
"""Words every statement's caption shares: they tell no statement from another."""


@pytest.mark.parametrize(
    "question",
    [
        "What happened to Boeing in 2018?",
        "Who is the chief executive of Foot Locker?",
        "Which bird migrates furthest?",
        "What is a capexample?",  # a word that merely starts like a term
    ],
)
def test_a_question_naming_no_term_is_searched_as_asked(question: str) -> None:
    assert FINANCE.expand(question) == question


def test_off_changes_nothing() -> None:
    question = "What is 3M's capex in the cash flow statement?"
    assert query_vocabulary("off").expand(question) == question


@pytest.mark.parametrize(
    ("question", "caption"),
    [
        # Boeing titles its balance sheet "Consolidated Statements of Financial Position"
        ("What is Boeing's FY2018 net PP&E? Use the balance sheet.", "Statements of Financial Position"),
        ("What was the FY2016 COGS for Microsoft?", "Cost of revenue"),
        (
            "What is the FY2018 capital expenditure amount for 3M?",
            "Purchases of property, plant and equipment",
        ),
        ("Using the P&L, what was AMD's operating margin?", "Consolidated Statements of Operations"),
        ("How much did Apple spend on buybacks?", "Repurchases of common stock"),
    ],
)
def test_the_filings_caption_is_added(question: str, caption: str) -> None:
    expanded = FINANCE.expand(question)
    assert expanded.startswith(question)  # appended, never replaced
    added = set(analyze(expanded[len(question) :]))
    assert set(analyze(caption)) - GENERIC <= added


def test_each_term_is_added_once() -> None:
    expanded = FINANCE.expand("balance sheet, balance sheets and the balance sheet again")
    assert expanded.count("financial position") == 1


def test_fiscal_years_add_the_bare_year_statement_columns_state() -> None:
    vocabulary = query_vocabulary("off", fiscal_years=True)
    assert vocabulary.expand("What was FY2018 capex versus FY17?").endswith("\n2018 2017")
    assert vocabulary.expand("Revenue in fiscal year 2020?") == "Revenue in fiscal year 2020?"  # already bare
    assert vocabulary.expand("What happened in 2018?") == "What happened in 2018?"
    assert query_vocabulary("off").expand("FY2018 capex") == "FY2018 capex"
