"""Plain data that crosses module boundaries (ingestion -> index -> retrieval)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from rag.layout import PageLayout

PageSource = Literal["text-layer", "ocr", "text"]


@dataclass(frozen=True, slots=True)
class Heading:
    """A heading or title, located by its character offset within the page text."""

    offset: int
    text: str
    level: int = 1


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a loaded document. ``page_no`` is 1-based, as a PDF viewer shows it."""

    page_no: int
    text: str
    source: PageSource
    ocr_confidence: float | None = None
    headings: tuple[Heading, ...] = ()
    layout: PageLayout | None = None
    """Where the words of ``text`` sit on the page (``None`` for formats without pages)."""


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable span of a document.

    ``char_start``/``char_end`` index into the document text, which is the page texts
    joined by ``PAGE_SEPARATOR``; ``page_start``/``page_end`` are 1-based and inclusive.
    ``context`` is a short header saying where the chunk is (document, section or table,
    page); it is embedded and keyword-indexed with the text (``indexed_text``) but never
    shown or quoted: ``text`` is what citations quote. The piece of a split table that does
    not start the table begins with the table's header lines (repeated, outside its
    ``char_start``..``char_end`` span).
    """

    id: str
    doc_id: str
    ordinal: int
    text: str
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    token_count: int
    heading: str | None = None
    context: str = ""
    context_embedded: bool = False
    """Whether the embedder saw the context too (``context_headers=both``) or only BM25 did."""

    @property
    def indexed_text(self) -> str:
        """What is keyword-indexed: the context header, then the text."""
        return indexed_text(self.text, self.context)

    @property
    def embedded_text(self) -> str:
        """What is embedded: the indexed text, or the clean text when the header is lexical only."""
        return self.indexed_text if self.context_embedded else self.text


def indexed_text(text: str, context: str) -> str:
    """A chunk's searchable text from its stored text and context (also when rebuilding an index)."""
    return f"{context}\n{text}" if context else text


PAGE_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class PageRecord:
    """A page as the catalog keeps it, so a citation's offsets can be found on the page.

    ``text`` is the page's text as chunk offsets index it (tables rewritten), starting at
    ``text_offset`` of the document text; ``layout`` places its words (``None``: no boxes).
    """

    page_no: int
    text_offset: int
    text: str
    source: PageSource
    layout: PageLayout | None = None

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """``start..end`` of the document text as offsets of this page's text; ``None`` if apart."""
        lo, hi = max(start - self.text_offset, 0), min(end - self.text_offset, len(self.text))
        return (lo, hi) if lo < hi else None


@dataclass(slots=True)
class Document:
    """A document as the catalog knows it."""

    id: str
    name: str
    collection: str
    content_sha256: str
    kind: str
    size_bytes: int
    pages: int = 0
    ocr_pages: int = 0
    chunks: int = 0
    state: str = "pending"
    created_at: float = 0.0
    metadata: dict[str, Any] = field(default_factory=dict)


def chunk_id(doc_id: str, ordinal: int) -> str:
    """Chunk ids derive from the document id and position so rewrites are idempotent."""
    return f"{doc_id}:{ordinal:06d}"


Filters = dict[str, Any]
"""Equality filters on document metadata; ``document_id`` may be a string or a list."""


@dataclass(frozen=True, slots=True)
class Hit:
    """One result of a dense or lexical search; ``rank`` is 1-based."""

    chunk_id: str
    doc_id: str
    score: float
    rank: int


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A chunk as read back from the index, with what a citation needs."""

    chunk: Chunk
    document_name: str
    collection: str
    content_sha256: str
