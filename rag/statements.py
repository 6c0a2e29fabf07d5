"""Financial statements a question names, and the chunks that are those statements.

Analysts ask "by relying on the details shown in the cash flow statement" or "using the
statement of income", and the figure they want sits in that statement's table, a page of
numbers whose rows share few words with the question and embed far from it. When a question
names a statement, chunks whose table title or heading is that statement are boosted (their
fused score multiplied by ``1 + RAG_STATEMENT_BOOST``): never a filter, and a question that
names no statement is ranked exactly as before. Each statement's names are the ones filings
use for it (US GAAP and IFRS titles: "Consolidated Statements of Operations", "Statements of
Financial Position", ...), matched in a chunk's context header and the first lines of its text
(a table's title lines, repeated at the head of each piece of a long table).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["STATEMENTS", "implied_statements", "named_statements", "statement_of"]

_STATEMENT = r"statements?"
_CONSOLIDATED = r"(?:(?:condensed\s+)?(?:consolidated\s+)?(?:and\s+combined\s+)?)"

STATEMENTS: dict[str, tuple[re.Pattern[str], re.Pattern[str]]] = {
    # kind: (how a question names it, how a filing titles it)
    "income": (
        re.compile(
            r"\b(?:income\s+statements?|statements?\s+of\s+(?:comprehensive\s+)?(?:income|operations|earnings)"
            r"|p\s*&\s*l|profit\s+(?:and|&)\s+loss(?:\s+statement)?|statement\s+of\s+profit\s+or\s+loss)\b",
            re.IGNORECASE,
        ),
        re.compile(
            rf"\b(?:{_CONSOLIDATED}(?:income\s+statements?|{_STATEMENT}\s+of\s+(?:consolidated\s+)?"
            r"(?:income|operations|earnings)|statements?\s+of\s+profit\s+or\s+loss))\b",
            re.IGNORECASE,
        ),
    ),
    "balance": (
        re.compile(
            r"\b(?:balance\s+sheets?|statements?\s+of\s+financial\s+(?:position|condition))\b", re.IGNORECASE
        ),
        re.compile(
            rf"\b(?:{_CONSOLIDATED}(?:balance\s+sheets?|{_STATEMENT}\s+of\s+(?:consolidated\s+)?financial\s+"
            r"(?:position|condition)))\b",
            re.IGNORECASE,
        ),
    ),
    "cash_flow": (
        re.compile(r"\b(?:cash\s+flows?\s+statements?|statements?\s+of\s+cash\s+flows?)\b", re.IGNORECASE),
        re.compile(
            rf"\b(?:{_CONSOLIDATED}(?:cash\s+flows?\s+statements?|{_STATEMENT}\s+of\s+(?:consolidated\s+)?cash\s+flows?))\b",
            re.IGNORECASE,
        ),
    ),
}

_IMPLIED: dict[str, re.Pattern[str]] = {
    # the line items each statement states, as questions name them (US GAAP captions and the
    # analysts' shorthand that ``rag.vocabulary`` also knows)
    "income": re.compile(
        r"\b(?:net\s+sales|revenues?|top\s+line|cost\s+of\s+(?:sales|revenues?|goods\s+sold)|cogs|gross\s+"
        r"(?:margin|profit)|operating\s+(?:expenses|income|margin|profit|costs)|r\s*&\s*d|research\s+and\s+"
        r"development|sg\s*&\s*a|selling,?\s+general|net\s+(?:income|earnings|profit|loss)|eps|earnings\s+per"
        r"\s+share|interest\s+expenses?|provision\s+for\s+income\s+taxes|ebitda?)\b",
        re.IGNORECASE,
    ),
    "balance": re.compile(
        r"\b(?:total\s+assets|current\s+(?:assets|liabilities|ratio)|quick\s+ratio|working\s+capital|"
        r"inventor(?:y|ies)|accounts\s+receivable|receivables|long[- ]term\s+debt|total\s+debt|debt\s+"
        r"(?:structure|configuration|levels?)|shareholders'?\s+equity|stockholders'?\s+equity|goodwill|"
        r"pp\s*&\s*e|ppne|property,?\s+plant|cash\s+and\s+cash\s+equivalents|liquidity)\b",
        re.IGNORECASE,
    ),
    "cash_flow": re.compile(
        r"\b(?:cash\s+flows?|operating\s+activities|investing\s+activities|financing\s+activities|capex|"
        r"capital\s+expenditures?|free\s+cash\s+flow|fcf|dividends\s+paid|share\s+repurchases?|buybacks?|"
        r"depreciation\s+and\s+amortization)\b",
        re.IGNORECASE,
    ),
}


def implied_statements(question: str) -> frozenset[str]:
    """The statements whose line items a question asks about without naming the statement."""
    named = named_statements(question)
    return frozenset(kind for kind, items in _IMPLIED.items() if kind not in named and items.search(question))


TITLE_CHARS = 300
"""How much of a chunk's text may hold its table's title lines."""


def named_statements(question: str) -> frozenset[str]:
    """The statements a question names (``income``, ``balance``, ``cash_flow``); usually none."""
    return frozenset(kind for kind, (asked, _) in STATEMENTS.items() if asked.search(question))


TITLE_LINE_CHARS = 80
"""A title is a short line; a sentence that mentions "the statements of operations" is not one."""


def statement_of(context: str, text: str, kinds: Iterable[str]) -> bool:
    """Whether a chunk (its context header and the title lines heading its text) is one of ``kinds``."""
    titles = [line for line in text[:TITLE_CHARS].splitlines() if len(line) <= TITLE_LINE_CHARS]
    head = "\n".join([context, *titles])
    return any(STATEMENTS[kind][1].search(head) for kind in kinds)
