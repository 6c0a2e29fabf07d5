"""Citation precision and recall at document and page level.

Precision: the cited sources that hold gold evidence, over all cited sources. Recall: the gold
evidence that some citation covers, over all gold evidence. At document level a source holds the
evidence when it comes from an evidence document; at page level when it also shares a page with
the evidence. Page level only judges what has page labels: gold evidence without a page is left
out, and so are cited sources from documents whose evidence has no page (unknown, not wrong);
sources from documents with no evidence at all are wrong at either level.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

Level = Literal["doc", "page"]


@dataclass(frozen=True, slots=True)
class Cited:
    """A source an answer cites: its document and the 1-based pages it spans."""

    doc: str
    pages: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Gold:
    """A piece of gold evidence: a document and, where known, a 1-based page."""

    doc: str
    page: int | None = None


@dataclass(frozen=True, slots=True)
class CitationScore:
    precision: float | None
    recall: float | None


def citation_scores(cited: Iterable[Cited], gold: Iterable[Gold], *, level: Level = "doc") -> CitationScore:
    """Scores for one answer; ``None`` where a ratio has nothing to count (nothing cited, no evidence)."""
    sources = list(dict.fromkeys(cited))  # the same source cited twice counts once
    evidence = list(dict.fromkeys(gold))
    gold_docs = {g.doc for g in evidence}
    if level == "doc":
        return CitationScore(
            precision=_ratio(sum(s.doc in gold_docs for s in sources), len(sources)),
            recall=_ratio(len(gold_docs & {s.doc for s in sources}), len(gold_docs)),
        )
    paged = [g for g in evidence if g.page is not None]
    if not paged:
        return CitationScore(None, None)
    pages_by_doc: dict[str, set[int]] = {}
    for g in paged:
        pages_by_doc.setdefault(g.doc, set()).add(g.page)  # type: ignore[arg-type]
    judged = [s for s in sources if s.doc in pages_by_doc or s.doc not in gold_docs]
    correct = sum(bool(pages_by_doc.get(s.doc, set()) & set(s.pages)) for s in judged)
    covered = sum(any(s.doc == g.doc and g.page in s.pages for s in sources) for g in paged)
    return CitationScore(precision=_ratio(correct, len(judged)), recall=_ratio(covered, len(paged)))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def mean_defined(values: Sequence[float | None]) -> float | None:
    """Macro average over the answers where a score is defined."""
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None
