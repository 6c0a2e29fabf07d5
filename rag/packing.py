"""Pack the best candidates into a token budget as labelled sources ``[1]..[n]``.

Greedy by relevance. Overlapping or touching chunks of one document become one source (their
character ranges index the same document text), so no sentence is shown twice; a chunk whose
words are nearly the same as one already packed (another copy of a document) is dropped. The
strongest sources go to the edges of the context, where models attend best ("lost in the
middle", Liu et al. 2023), and the labels follow the order in which they appear.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import tiktoken

from rag.citations import CITATION_MARKER
from rag.errors import InvalidRequest
from rag.llm.types import SourceRef
from rag.tokens import encoding_for_model, get_encoding
from rag.types import StoredChunk

DUPLICATE_JACCARD = 0.9
_SHINGLE = 3
_WORD = re.compile(r"\w+", re.UNICODE)
_BLOCK_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A retrieved chunk and the score it was ranked by (higher is better)."""

    chunk: StoredChunk
    score: float


@dataclass(slots=True)
class PackedContext:
    text: str
    sources: list[SourceRef]
    tokens_used: int
    budget: int
    dropped: dict[str, int] = field(default_factory=dict)
    merged: int = 0
    truncated: bool = False
    chunk_ids: dict[int, list[str]] = field(default_factory=dict)
    """Label -> the chunks merged into that source, strongest first."""


@dataclass(slots=True)
class _Span:
    doc_id: str
    document_name: str
    content_sha256: str
    start: int
    end: int
    text: str
    page_start: int
    page_end: int
    score: float
    strength: int  # order of first acceptance: 0 is the most relevant
    exact: bool  # every member's text is exactly doc_text[start:end]
    chunk_ids: list[str]
    shingles: list[frozenset[str]]
    tokens: int = 0


def shingles(text: str) -> frozenset[str]:
    """Word 3-grams; texts too short for one use their words."""
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) < _SHINGLE:
        return frozenset(words)
    return frozenset(" ".join(words[i : i + _SHINGLE]) for i in range(len(words) - _SHINGLE + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def edge_order(n: int) -> list[int]:
    """Strength ranks 0..n-1 laid out strongest-at-the-edges: 0, 2, 4, ..., 5, 3, 1."""
    ranks = list(range(n))
    return ranks[0::2] + ranks[1::2][::-1]


def _pages(start: int, end: int) -> str:
    return f"p. {start}" if start == end else f"pp. {start}-{end}"


def _header(n: int, span: _Span) -> str:
    name = " ".join(span.document_name.split()) or span.doc_id
    return f"[{n}] {name} ({_pages(span.page_start, span.page_end)})"


def _body(text: str) -> str:
    # bracketed numbers inside a source would read as labels to the model and the citation parser
    return CITATION_MARKER.sub(lambda m: f"({m.group(1)})", text.strip())


def _render(n: int, span: _Span) -> str:
    return f"{_header(n, span)}\n{_body(span.text)}"


def _is_exact(chunk: StoredChunk) -> bool:
    c = chunk.chunk
    return len(c.text) == c.char_end - c.char_start


def _join_by_text(left: str, right: str, min_overlap: int = 12) -> str | None:
    """Join two texts whose offsets cannot be trusted: the end of ``left`` must reappear at the
    start of ``right`` (up to surrounding whitespace), or one must contain the other."""
    lhs, rhs = left.rstrip(), right.lstrip()
    if rhs.rstrip() in lhs:
        return left
    if lhs.lstrip() in rhs:
        return right
    for size in range(min(len(lhs), len(rhs)), min_overlap - 1, -1):  # longest overlap first
        if lhs.endswith(rhs[:size]):
            return lhs + rhs[size:]
    return None


class ContextPacker:
    """Packs candidates for one target model's tokenizer (tiktoken; unknown models use cl100k)."""

    def __init__(
        self,
        budget: int,
        *,
        model: str | None = None,
        encoding: str = "cl100k_base",
        duplicate_jaccard: float = DUPLICATE_JACCARD,
    ) -> None:
        if budget <= 0:
            raise InvalidRequest("context budget must be a positive number of tokens")
        self.budget = budget
        self.encoding: tiktoken.Encoding = (
            encoding_for_model(model, default=encoding) if model else get_encoding(encoding)
        )
        self.duplicate_jaccard = duplicate_jaccard

    def count(self, text: str) -> int:
        return len(self.encoding.encode(text, disallowed_special=()))

    # --- selection --------------------------------------------------------------------

    def _new_span(self, cand: Candidate, strength: int) -> _Span:
        c = cand.chunk.chunk
        return _Span(
            doc_id=c.doc_id,
            document_name=cand.chunk.document_name,
            content_sha256=cand.chunk.content_sha256,
            start=c.char_start,
            end=c.char_end,
            text=c.text,
            page_start=c.page_start,
            page_end=c.page_end,
            score=cand.score,
            strength=strength,
            exact=_is_exact(cand.chunk),
            chunk_ids=[c.id],
            shingles=[shingles(c.text)],
        )

    def _merged(self, spans: list[_Span], cand: Candidate) -> _Span | None:
        """One span covering ``spans`` and ``cand``, or ``None`` if their texts cannot be joined."""
        c = cand.chunk.chunk
        first = min(spans, key=lambda s: s.strength)
        pieces: list[tuple[int, int, str]] = [(s.start, s.end, s.text) for s in spans]
        pieces.append((c.char_start, c.char_end, c.text))
        pieces.sort(key=lambda p: (p[0], -p[1]))
        exact = all(s.exact for s in spans) and _is_exact(cand.chunk)
        text, end = pieces[0][2], pieces[0][1]
        for start, stop, piece in pieces[1:]:
            if stop <= end:
                continue
            if exact:
                text += piece[end - start :]
            else:
                joined = _join_by_text(text, piece)
                if joined is None:
                    return None
                text = joined
            end = stop
        return _Span(
            doc_id=first.doc_id,
            document_name=first.document_name,
            content_sha256=first.content_sha256,
            start=pieces[0][0],
            end=end,
            text=text,
            page_start=min([s.page_start for s in spans] + [c.page_start]),
            page_end=max([s.page_end for s in spans] + [c.page_end]),
            score=max([s.score for s in spans] + [cand.score]),
            strength=first.strength,
            exact=exact,
            chunk_ids=[cid for s in sorted(spans, key=lambda s: s.strength) for cid in s.chunk_ids] + [c.id],
            shingles=[sh for s in spans for sh in s.shingles] + [shingles(c.text)],
        )

    def pack(self, candidates: Sequence[Candidate]) -> PackedContext:
        """``candidates`` best first; returns the context and what was left out and why."""
        dropped = {"budget": 0, "duplicate": 0, "contained": 0}
        spans: list[_Span] = []
        merged = opened = 0
        separator_tokens = self.count(_BLOCK_SEPARATOR)
        used = 0
        for cand in candidates:
            c = cand.chunk.chunk
            touching = [
                s for s in spans if s.doc_id == c.doc_id and s.start <= c.char_end and c.char_start <= s.end
            ]
            if any(s.start <= c.char_start and c.char_end <= s.end for s in touching):
                dropped["contained"] += 1
                continue
            replacement = self._merged(touching, cand) if touching else None
            if replacement is None:
                own = shingles(c.text)
                if any(jaccard(own, sh) >= self.duplicate_jaccard for s in spans for sh in s.shingles):
                    dropped["duplicate"] += 1
                    continue
                replacement = self._new_span(cand, opened)
                touching = []
            replacement.tokens = self.count(_render(len(spans) + 1, replacement))
            delta = replacement.tokens - sum(s.tokens for s in touching)
            if not touching:
                delta += separator_tokens if spans else 0
            if used + delta > self.budget:
                dropped["budget"] += 1
                continue
            used += delta
            if touching:
                merged += 1
                spans = [s for s in spans if all(s is not t for t in touching)]
            else:
                opened += 1
            spans.append(replacement)
        truncated = False
        if not spans and candidates and dropped["budget"]:
            span = self._truncated(candidates[0])
            if span is not None:
                spans, truncated = [span], True
                dropped["budget"] -= 1
        text, ordered = self._layout(spans)
        tokens = self.count(text)
        # block-by-block counts are an estimate (labels renumber, BPE joins across blocks); the
        # final count is exact, and the weakest source goes until the budget holds
        while tokens > self.budget and ordered:
            weakest = max(spans, key=lambda s: s.strength)
            spans.remove(weakest)
            dropped["budget"] += len(weakest.chunk_ids)
            text, ordered = self._layout(spans)
            tokens = self.count(text)
        sources = [
            SourceRef(
                n=n,
                chunk_id=s.chunk_ids[0],
                document_id=s.doc_id,
                document_name=s.document_name,
                content_sha256=s.content_sha256,
                pages=list(range(s.page_start, s.page_end + 1)),
                text=s.text.strip(),
                score=s.score,
                char_start=s.start + (len(s.text) - len(s.text.lstrip())),
                char_end=s.end - (len(s.text) - len(s.text.rstrip())),
                exact=s.exact,
            )
            for n, s in enumerate(ordered, start=1)
        ]
        return PackedContext(
            text=text,
            sources=sources,
            tokens_used=tokens,
            budget=self.budget,
            dropped=dropped,
            merged=merged,
            truncated=truncated,
            chunk_ids={n: list(s.chunk_ids) for n, s in enumerate(ordered, start=1)},
        )

    def _layout(self, spans: list[_Span]) -> tuple[str, list[_Span]]:
        by_strength = sorted(spans, key=lambda s: s.strength)
        ordered = [by_strength[i] for i in edge_order(len(by_strength))]
        return _BLOCK_SEPARATOR.join(_render(n, s) for n, s in enumerate(ordered, start=1)), ordered

    def _truncated(self, cand: Candidate) -> _Span | None:
        """When even the best chunk does not fit, keep as much of it as does, cut at a word."""
        span = self._new_span(cand, 0)
        room = self.budget - self.count(_header(1, span) + "\n")
        if room <= 0:
            return None
        tokens = self.encoding.encode(_body(span.text), disallowed_special=())
        while room > 0:
            cut = self.encoding.decode(tokens[:room])
            if " " in cut.strip():
                cut = cut[: cut.rstrip().rfind(" ")]
            span.text = cut.strip()
            if span.text and self.count(_render(1, span)) <= self.budget:
                span.exact = False
                span.tokens = self.count(_render(1, span))
                return span
            room -= max(1, room // 10)
        return None


def pack_context(
    candidates: Sequence[Candidate], budget: int, *, model: str | None = None, encoding: str = "cl100k_base"
) -> PackedContext:
    return ContextPacker(budget, model=model, encoding=encoding).pack(candidates)
