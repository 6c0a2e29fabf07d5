"""Each page recorded as the chunker reads it, so citations can be found on their page later.

The chunker indexes a document text made of the pages' texts (tables rewritten when
``RAG_TABLES`` is on) joined by ``PAGE_SEPARATOR``; chunk and citation offsets index that
text. Recording each page's text there, where it starts and its word boxes (moved with the
table rewrite), is what turns a citation's offsets into rectangles on the page. The tables
are read again here rather than handed out by the chunker: 0.5 ms a page, and the chunker
stays a function of its pages. Kept in memory until the document is written: about 15 KB a
page of a 10-K (4.5 MB for 300 pages), bounded by ``RAG_MAX_PDF_PAGES``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ingest.tables import read_tables
from rag.types import PAGE_SEPARATOR, Page, PageRecord


def recorded(pages: Iterable[Page], *, tables: bool, into: list[PageRecord]) -> Iterator[Page]:
    """Pass ``pages`` through, appending each one's record to ``into``."""
    offset = 0
    for page in pages:
        text, layout = page.text, page.layout
        if tables:
            read = read_tables(text)
            text = read.text
            layout = layout.remapped(read.edits) if layout is not None else None
        into.append(PageRecord(page.page_no, offset, text, page.source, layout))
        offset += len(text) + len(PAGE_SEPARATOR)
        yield page


__all__ = ["recorded"]
