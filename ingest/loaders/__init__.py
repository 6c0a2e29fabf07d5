"""Loaders: a file on disk -> a ``LoadedDocument`` whose pages arrive lazily.

Everything that can be checked before the first page (type, encryption, page count and
size, image pixels) is checked in :func:`load_document`, so a bad upload fails fast and
before anything is written; what can only fail while reading pages (a PDF truncated
half-way) raises from the page iterator, always with an error from ``rag.errors``.

Format modules are imported on first use: trafilatura, python-docx and pdfium are slow
to import and most processes need one or two of them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ingest.sniff import sniff
from rag.errors import NoTextFound
from rag.settings import Settings
from rag.types import Heading, Page


@dataclass
class LoadedDocument:
    """A document whose validation is done and whose pages are yet to be read."""

    kind: str
    page_count: int
    title: str | None
    pages: Iterator[Page]


_LOADERS: dict[str, tuple[str, str]] = {
    "pdf": ("ingest.loaders.pdf", "load_pdf"),
    "png": ("ingest.loaders.image", "load_image"),
    "jpeg": ("ingest.loaders.image", "load_image"),
    "tiff": ("ingest.loaders.image", "load_image"),
    "docx": ("ingest.loaders.docx", "load_docx"),
    "html": ("ingest.loaders.html", "load_html"),
    "markdown": ("ingest.loaders.markdown", "load_markdown"),
    "text": ("ingest.loaders.text", "load_text"),
}


def load_document(path: Path, settings: Settings) -> LoadedDocument:
    """Sniff ``path`` and hand it to its loader; raises ``DocumentError`` subclasses on bad input."""
    kind = sniff(path)
    module_name, function_name = _LOADERS[kind]
    loader = getattr(importlib.import_module(module_name), function_name)
    document: LoadedDocument = loader(path, settings)
    document.kind = kind
    return document


def single_page(
    kind: str, text: str, title: str | None, headings: tuple[Heading, ...] = ()
) -> LoadedDocument:
    """Text-like formats have no pages of their own: the whole text is page 1."""
    if not text.strip():
        raise NoTextFound("The document contains no text")
    page = Page(page_no=1, text=text, source="text", headings=headings)
    return LoadedDocument(kind=kind, page_count=1, title=title or None, pages=iter((page,)))


__all__ = ["LoadedDocument", "load_document", "single_page"]
