"""Check a model's answer against the context it was given.

Markers the model invented (labels that were not in the context) are removed from the text and
counted; an answer that had sources but cites none of them is flagged; each valid label becomes
a citation with the document, pages and the source sentence that best supports the claim.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import BaseModel

from rag.llm.schema import ABSTENTION_SENTENCE, parse_grounded_answer
from rag.llm.types import SourceRef

CITATION_MARKER = re.compile(r"\[\s*(\d+(?:\s*[,;\-–]\s*\d+)*)\s*\]")
"""A citation marker: ``[1]``, ``[ 2 ]``, ``[1, 3]``, ``[1; 3]``, ``[2-4]``, ``[2–4]``; group 1 holds the labels.

The one definition of what reads as a citation: the checker parses it, the packer neutralises it
inside source text, evaluation strips it from answers before scoring them."""
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+", re.UNICODE)
_MAX_RANGE = 50  # "[1-9999]" is not a citation worth expanding
SNIPPET_CHARS = 300


class Citation(BaseModel):
    """One citation, made once by the checker and carried unchanged by every surface (the answer,
    its stream, chat completions, MCP, the stored conversation)."""

    n: int
    document_id: str
    document_name: str
    pages: list[int]
    snippet: str
    chunk_id: str
    char_start: int = 0
    """Where the quoted passage starts in the document's text (its pages joined by the page
    separator); the whole cited source's span when the snippet cannot be placed exactly."""
    char_end: int = 0


@dataclass(frozen=True, slots=True)
class CheckedAnswer:
    text: str
    abstained: bool
    citations: list[Citation]
    dropped: int
    """How many cited labels were not in the context (removed from ``text``)."""
    uncited: bool
    """The answer had sources to cite and cites none of them."""
    json_valid: bool | None = None
    """``None`` when JSON was not asked for."""


def _expand(group: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group.strip()):
        bounds = re.split(r"\s*[\-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            low, high = int(bounds[0]), int(bounds[1])
            if low <= high and high - low <= _MAX_RANGE:
                out.extend(range(low, high + 1))
                continue
        out.extend(int(b) for b in bounds if b.isdigit())
    return out


def parse_markers(text: str) -> list[int]:
    """Every label cited, in order of appearance, repeats kept: ``[1]``, ``[1, 2]``, ``[1][2]``, ``[1-3]``."""
    return [n for m in CITATION_MARKER.finditer(text) for n in _expand(m.group(1))]


def _clean_markers(text: str, valid: set[int]) -> tuple[str, list[int]]:
    """Drop the labels that are not in ``valid``; return the text and the labels dropped."""
    dropped: list[int] = []

    def keep(match: re.Match[str]) -> str:
        labels = _expand(match.group(1))
        good = [n for n in labels if n in valid]
        dropped.extend(n for n in labels if n not in valid)
        return "[" + ", ".join(str(n) for n in good) + "]" if good else ""

    cleaned = CITATION_MARKER.sub(keep, text)
    if dropped:
        cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, dropped


def _normalise(text: str) -> str:
    return " ".join(CITATION_MARKER.sub(" ", text).split()).lower()


def is_abstention(text: str) -> bool:
    """The standard sentence, alone or leading the reply (models often add why they cannot answer)."""
    return _normalise(text).startswith(_normalise(ABSTENTION_SENTENCE).rstrip("."))


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if len(w) > 2}


def _snippet(source: SourceRef, claim: str) -> str:
    sentences = [s.strip() for s in _SENTENCE_END.split(source.text) if s.strip()] or [source.text.strip()]
    claim_words = _words(claim)
    best = max(sentences, key=lambda s: len(_words(s) & claim_words)) if claim_words else sentences[0]
    if len(best) <= SNIPPET_CHARS:
        return best
    cut = best[:SNIPPET_CHARS]
    return (cut[: cut.rfind(" ")] if " " in cut else cut) + "…"


def snippet_offsets(source: SourceRef, snippet: str) -> tuple[int, int]:
    """The snippet's offsets in the document text; the source's own span when it cannot be placed."""
    quoted = snippet.removesuffix("…")
    at = source.text.find(quoted) if source.exact and quoted else -1
    if at < 0:
        return source.char_start, source.char_end
    return source.char_start + at, source.char_start + at + len(quoted)


_MARKER_ONLY = re.compile(rf"(?:{CITATION_MARKER.pattern}\s*)+")


def _claims(text: str) -> dict[int, str]:
    """Label -> the sentences of the answer that cite it (the claim a snippet should support)."""
    out: dict[int, str] = {}
    sentences: list[str] = []
    for piece in _SENTENCE_END.split(text):
        # "Claim. [1]" puts the marker after the full stop: it belongs to the sentence before
        if sentences and _MARKER_ONLY.fullmatch(piece.strip()):
            sentences[-1] = f"{sentences[-1]} {piece.strip()}"
        else:
            sentences.append(piece)
    for sentence in sentences:
        for n in parse_markers(sentence):
            out[n] = (out.get(n, "") + " " + sentence).strip()
    return out


def _citation(source: SourceRef, claim: str) -> Citation:
    snippet = _snippet(source, claim)
    start, end = snippet_offsets(source, snippet)
    return Citation(
        n=source.n,
        document_id=source.document_id,
        document_name=source.document_name,
        pages=list(source.pages),
        snippet=snippet,
        chunk_id=source.chunk_id,
        char_start=start,
        char_end=end,
    )


def check_answer(raw: str, sources: Sequence[SourceRef], *, json_mode: bool = False) -> CheckedAnswer:
    json_valid: bool | None = None
    text, extra_labels, abstained = raw.strip(), [], False
    if json_mode:
        try:
            parsed = parse_grounded_answer(raw)
        except ValueError:
            json_valid = False
        else:
            json_valid = True
            text, extra_labels, abstained = parsed.answer.strip(), list(parsed.citations), parsed.abstained
    by_label = {s.n: s for s in sources}
    text, invented = _clean_markers(text, set(by_label))
    # a label invented in the text and repeated in the JSON list is one drop, not two
    dropped = len(invented) + len({n for n in extra_labels if n not in by_label and n not in invented})
    if abstained or is_abstention(text):
        return CheckedAnswer(ABSTENTION_SENTENCE, True, [], dropped, False, json_valid)
    order: list[int] = []
    for n in [*parse_markers(text), *extra_labels]:
        if n in by_label and n not in order:
            order.append(n)
    claims = _claims(text)
    citations = [_citation(by_label[n], claims.get(n, text)) for n in order]
    uncited = bool(sources) and not citations
    return CheckedAnswer(text, False, citations, dropped, uncited, json_valid)
