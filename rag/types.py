"""Plain data that crosses module boundaries (ingestion -> index -> retrieval)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

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


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable span of a document.

    ``char_start``/``char_end`` index into the document text, which is the page texts
    joined by ``PAGE_SEPARATOR``; ``page_start``/``page_end`` are 1-based and inclusive.
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


PAGE_SEPARATOR = "\n\n"


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
