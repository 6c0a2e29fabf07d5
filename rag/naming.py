"""Which documents a question names, so retrieval can favour them without filtering on them.

In a collection of many filings every cash-flow statement looks alike to the embedder and to
BM25; what tells them apart is the filer and the period, which the question usually states
("What is the FY2018 capital expenditure for 3M?") and a chunk usually does not. So each
document gets a short description (its name, title, filer, form, period) and a question is
matched against those descriptions, not against the chunks. A document counts as named only
when the question shares a discriminating *name* word with it (a company, a title word); years,
quarters and form types then rank the named documents but never name one on their own, so "what
happened in 2018?" favours nothing. The result is a weight per document, never a filter.

A filing is named by who filed it; any other document only by its title or file name, and
those name topics as often as documents: in a collection of Wikipedia paragraphs "French"
names "French and Indian War" in a question about the Huguenots. Measured (README, the
ablation): the full boost through titles cost SQuAD 2.0 and ClapNQ 0.02-0.03 of MRR@10; at a
quarter of the strength it cost nothing beyond noise. So a document named through its filer
gets the whole weight, one named only through its title or file name a quarter of it.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

from rag.index.analyzer import STOP_WORDS
from rag.types import Document

_FORM = re.compile(r"\b(10|20|40|8|6)\s*-?\s*([kqf])\b")
_TOKEN = re.compile(r"[a-z0-9]+(?:&[a-z0-9]+)*")
_POSSESSIVE = re.compile(r"['’]s\b")
_FISCAL_YEAR = re.compile(r"^(?:fy|q[1-4]|h[12])?((?:19|20)\d{2})(?:q[1-4]|h[12])?$")
_QUARTER = re.compile(r"^(?:fy)?(?:(?:19|20)\d{2})?(?:q([1-4])|([1-4])q)(?:(?:19|20)\d{2})?$")
_QUARTER_WORDS = re.compile(r"\b(first|second|third|fourth)\s+(?:fiscal\s+)?quarter\b")
_ORDINALS = {"first": "1", "second": "2", "third": "3", "fourth": "4"}
_SHORT_FISCAL = re.compile(r"^fy(\d{2})$")
_FORMS = frozenset({"10k", "10q", "8k", "20f", "40f", "6k"})
_QUARTERS = frozenset({"q1", "q2", "q3", "q4"})

# Words that name no document: question words, finance vocabulary every filing shares, and the
# stop words of the lexical analyzer. Kept short; a word every description shares gets no weight
# anyway (see ``_DISCRIMINATING``).
_GENERIC_TEXT = """
    what which who whom whose when where why how does do did
    has have had from its than over between about per fy q1 q2 q3 q4 h1 h2 year years fiscal
    quarter quarterly annual report reports form company companies corporation corp inc incorporated
    co plc ltd llc group holdings international the document documents filing filed period ended
    ending pdf txt md html docx page
"""
_GENERIC = STOP_WORDS | frozenset(_GENERIC_TEXT.split())
_PERIOD_SHARE = 0.5
"""Years, quarters and form types rank the documents a name picked, at half a name word's weight."""
_PROFILE_PREFIX = "profile_"
"""Metadata keys ingestion stores a document's profile under (filer, form, period...)."""
_DISCRIMINATING = 0.5
"""A name word names a document only if at most this share of the collection's documents has it."""
_TITLE_SHARE = 0.25
"""The weight of a document named only through its title or file name, not its filer."""


def _terms(text: str) -> list[str]:
    """Lower-case words with form types joined ("10-K" -> "10k"), and years and quarters split
    out ("FY2018" -> 2018; "2023Q2", "Q22023", "4Q" and "second quarter" -> q2, q4)."""
    lowered = _POSSESSIVE.sub("", text.lower().replace("_", " "))
    lowered = _FORM.sub(lambda m: m.group(1) + m.group(2), lowered)
    lowered = _QUARTER_WORDS.sub(lambda m: "q" + _ORDINALS[m.group(1)], lowered)
    out: list[str] = []
    for token in _TOKEN.findall(lowered):
        out.append(token)
        year = _FISCAL_YEAR.match(token)
        if year and year.group(1) != token:
            out.append(year.group(1))
        quarter = _QUARTER.match(token)
        if quarter and token not in _QUARTERS:
            out.append("q" + (quarter.group(1) or quarter.group(2)))
        short = _SHORT_FISCAL.match(token)
        if short:
            out.append("20" + short.group(1))
    return out


def _is_name(term: str) -> bool:
    """Periods ("fy2018", "2023q2", "4q") are not names: a period alone names no document."""
    return (
        term not in _GENERIC
        and term not in _FORMS
        and not term.isdigit()
        and len(term) > 1
        and not _FISCAL_YEAR.match(term)
        and not _QUARTER.match(term)
    )


@dataclass(frozen=True, slots=True)
class Description:
    """A document as a question would name it: all its naming text, and who filed it (if a filing)."""

    text: str
    filer: str = ""


@dataclass(frozen=True, slots=True)
class _Described:
    doc_id: str
    terms: frozenset[str]
    filer: frozenset[str]


class DocumentNames:
    """The descriptions of one collection's documents, ready to match questions against."""

    def __init__(self, descriptions: Mapping[str, Description]) -> None:
        self._docs = [
            _Described(doc_id, frozenset(_terms(d.text + " " + d.filer)), frozenset(_terms(d.filer)))
            for doc_id, d in descriptions.items()
        ]
        df: Counter[str] = Counter(t for d in self._docs for t in d.terms)
        n = len(self._docs)
        self._idf = {t: math.log(1 + n / c) for t, c in df.items()}
        self._names = {t for t, c in df.items() if _is_name(t) and c <= _DISCRIMINATING * n}

    def __len__(self) -> int:
        return len(self._docs)

    def match(self, question: str) -> dict[str, float]:
        """Document id -> weight in (0, 1] for the documents the question names (the best is 1)."""
        asked = set(_terms(question))
        named_by = asked & self._names
        if not named_by:
            return {}
        scores: dict[str, float] = {}
        for doc in self._docs:
            names = doc.terms & named_by
            if not names:
                continue
            periods = {t for t in asked & doc.terms if t.isdigit() or t in _FORMS or t in _QUARTERS}
            scores[doc.doc_id] = sum(self._idf[t] for t in names) + _PERIOD_SHARE * sum(
                self._idf[t] for t in periods
            )
        best = max(scores.values(), default=0.0)
        if best <= 0:
            return {}
        filed = {d.doc_id for d in self._docs if d.filer & named_by}
        return {
            doc_id: score / best * (1.0 if doc_id in filed else _TITLE_SHARE)
            for doc_id, score in scores.items()
        }


def describe_document(document: Document) -> Description:
    """A document as a question would name it: file name, title and the profile ingestion read."""
    meta = document.metadata
    parts = [document.name, str(meta.get("title") or "")]
    parts += [str(v) for k, v in sorted(meta.items()) if k.startswith(_PROFILE_PREFIX) and v]
    return Description(" ".join(p for p in parts if p), filer=str(meta.get(_PROFILE_PREFIX + "filer") or ""))


__all__ = ["Description", "DocumentNames", "describe_document"]
