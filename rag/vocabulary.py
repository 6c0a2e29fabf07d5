"""A question's financial terms in the words filings use, for the keyword search.

Questions and filings name the same things differently: a question asks for "the balance
sheet", Boeing's 10-K titles it "Consolidated Statements of Financial Position"; "capex" is
"Purchases of property, plant and equipment", "COGS" is "Cost of sales", "P&L" is the
"Statement of Operations" (or of Income, or of Earnings: filers differ). BM25 cannot know
these are the same, and the embedder only half knows. So the lexical query gets the filings'
names of what the question names appended (never replaced): a question that names nothing
here is searched exactly as asked. The dense query is left alone: a longer query only blurs
its vector.

The vocabulary is written by hand because no maintained library maps analysts' shorthand to
US-GAAP statement captions (XBRL's taxonomy labels are captions, not the way people ask). It
was written while reading FinanceBench's misses, so its gain there is optimistic; the Docugami
10-Q set, read by nobody while writing it, measures it fairly (both in the README).
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = ["QueryVocabulary", "VocabularyName", "query_vocabulary"]

VocabularyName = Literal["off", "finance"]

# (what a question says, what filings call it); patterns are matched case-insensitively on
# word boundaries, and each entry adds its words at most once.
_FINANCE: tuple[tuple[str, str], ...] = (
    # the statements
    (
        r"balance\s+sheets?|statements?\s+of\s+financial\s+(?:position|condition)",
        "balance sheets financial position",
    ),
    (
        r"income\s+statements?|p\s*&\s*l|profit\s+and\s+loss|statements?\s+of\s+(?:income|operations|earnings)",
        "statements of income operations earnings",
    ),
    (
        r"cash\s+flows?\s+statements?|statements?\s+of\s+cash\s+flows?",
        "statements of cash flows",
    ),
    # line items asked by their shorthand
    (
        r"capex|capital\s+expenditures?|capital\s+spending",
        "purchases of property plant and equipment additions",
    ),
    (r"pp\s*&\s*e|ppne|property,?\s+plant", "property plant and equipment net"),
    (r"cogs|cost\s+of\s+goods\s+sold", "cost of sales cost of revenue cost of products sold"),
    (r"revenues?|top\s+line", "net sales revenues"),
    (r"net\s+profit|bottom\s+line|net\s+margin", "net income net earnings"),
    (r"operating\s+(?:margin|profit)|ebit\b", "operating income income from operations"),
    (r"gross\s+(?:margin|profit)", "gross profit gross margin cost of sales"),
    (r"sg\s*&\s*a", "selling general and administrative expenses"),
    (r"r\s*&\s*d", "research and development"),
    (r"d\s*&\s*a|ebitda", "depreciation and amortization"),
    (r"working\s+capital|current\s+ratio|quick\s+ratio", "total current assets total current liabilities"),
    (r"buybacks?|share\s+repurchases?|repurchased?\s+shares", "repurchases of common stock treasury stock"),
    (r"\beps\b", "earnings per share diluted basic"),
    (r"free\s+cash\s+flow|\bfcf\b", "net cash provided by operating activities purchases of property"),
    (r"\broa\b|return\s+on\s+assets", "net income total assets"),
    (r"\broe\b|return\s+on\s+equity", "net income total shareholders equity"),
    (r"interest\s+coverage", "interest expense operating income"),
    (r"effective\s+tax\s+rate", "provision for income taxes effective tax rate"),
)


class QueryVocabulary:
    """Appends to a keyword query the filings' names of the terms it uses."""

    def __init__(self, entries: tuple[tuple[str, str], ...], *, fiscal_years: bool = False) -> None:
        self._entries = [(re.compile(rf"(?<![\w&])(?:{p})(?![\w&])", re.IGNORECASE), w) for p, w in entries]
        self._fiscal_years = fiscal_years

    def expand(self, question: str) -> str:
        added = [words for pattern, words in self._entries if pattern.search(question)]
        if self._fiscal_years:
            added += [
                y for y in dict.fromkeys(_years(question)) if not re.search(rf"(?<!\w){y}(?!\w)", question)
            ]
        return question if not added else f"{question}\n{' '.join(added)}"


_FISCAL_YEAR = re.compile(r"\b(?:fy|fiscal\s+year)\s*'?(\d{4}|\d{2})\b", re.IGNORECASE)


def _years(question: str) -> list[str]:
    """The bare years of "FY2018", "FY18", "fiscal year 2018": statement columns say "2018", and the
    keyword analyzer keeps "fy2018" as one word that no table row contains."""
    return [y if len(y) == 4 else f"20{y}" for y in _FISCAL_YEAR.findall(question)]


_NONE = QueryVocabulary(())


def query_vocabulary(name: VocabularyName, *, fiscal_years: bool = False) -> QueryVocabulary:
    """The named vocabulary; ``fiscal_years`` also adds the bare year of every "FY2018" (any vocabulary)."""
    entries = _FINANCE if name == "finance" else ()
    return QueryVocabulary(entries, fiscal_years=fiscal_years) if entries or fiscal_years else _NONE
