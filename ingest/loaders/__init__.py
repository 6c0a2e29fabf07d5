"""Loaders: a file on disk -> a ``LoadedDocument`` whose pages arrive lazily.

Each kind of file has one :class:`Loader`, registered in :data:`LOADERS` by the kind the
sniffer names. Everything that can be checked before the first page (type, encryption, page
count and size, image pixels) is checked when the loader is called, so a bad upload fails
fast and before anything is written; what can only fail while reading pages (a PDF truncated
half-way) raises from the page iterator, always with an error from ``rag.errors``.

Format modules are imported on first use (each registered loader imports its module when
called): trafilatura, python-docx and pdfium are slow to import and most processes need one
or two of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

from ingest.sniff import sniff
from rag.errors import NoTextFound, UnsupportedType
from rag.settings import Settings
from rag.types import Heading, Page


@dataclass
class LoadedDocument:
    """A document whose validation is done and whose pages are yet to be read."""

    kind: str
    page_count: int
    title: str | None
    pages: Iterator[Page]
    release: Callable[[], None] = lambda: None
    """Call when done with ``pages``, read to the end or not (``ingest.isolation`` kills the child
    process of a read that was abandoned)."""


class Loader(Protocol):
    """Reads one kind of file: validates it up front, then yields its pages lazily.

    Raises only ``rag.errors`` errors: a ``DocumentError`` for bad input (whatever the bytes
    turn out to be: a loader never trusts that the file is the kind it was registered for),
    ``OcrUnavailable`` when the file needs OCR that cannot run.
    """

    def __call__(self, path: Path, settings: Settings, /) -> LoadedDocument: ...


def _pdf(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.pdf import load_pdf

    return load_pdf(path, settings)


def _image(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.image import load_image

    return load_image(path, settings)


def _docx(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.docx import load_docx

    return load_docx(path, settings)


def _html(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.html import load_html

    return load_html(path, settings)


def _markdown(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.markdown import load_markdown

    return load_markdown(path, settings)


def _text(path: Path, settings: Settings) -> LoadedDocument:
    from ingest.loaders.text import load_text

    return load_text(path, settings)


LOADERS: Mapping[str, Loader] = MappingProxyType(
    {
        "pdf": _pdf,
        "png": _image,
        "jpeg": _image,
        "tiff": _image,
        "docx": _docx,
        "html": _html,
        "markdown": _markdown,
        "text": _text,
    }
)
"""The loader of each kind :func:`ingest.sniff.sniff` names (read-only)."""


def load_document(path: Path, settings: Settings, kind: str | None = None) -> LoadedDocument:
    """Hand ``path`` to the loader of its kind; raises ``DocumentError`` subclasses on bad input.

    ``kind``: what intake sniffed (``ingest.intake.Admission.kind``); sniffed here when not given.
    """
    kind = kind or sniff(path)
    loader = LOADERS.get(kind)
    if loader is None:
        raise UnsupportedType(f"no loader for {kind[:32]} files")
    document = loader(path, settings)
    document.kind = kind
    return document


def check_document(path: Path, settings: Settings, kind: str) -> None:
    """The limits a file's own structure states (pages, page sizes, pixels, frames), checked at
    intake so an upload over them answers 413 at once instead of a 202 and a failed job."""
    if kind == "pdf":
        from ingest.loaders.pdf import check_pdf

        check_pdf(path, settings)
    elif kind in ("png", "jpeg", "tiff"):
        from ingest.loaders.image import check_image

        check_image(path, settings)


def single_page(
    kind: str, text: str, title: str | None, headings: tuple[Heading, ...] = ()
) -> LoadedDocument:
    """Text-like formats have no pages of their own: the whole text is page 1."""
    if not text.strip():
        raise NoTextFound("The document contains no text")
    page = Page(page_no=1, text=text, source="text", headings=headings)
    return LoadedDocument(kind=kind, page_count=1, title=title or None, pages=iter((page,)))


__all__ = ["LOADERS", "LoadedDocument", "Loader", "check_document", "load_document", "single_page"]
