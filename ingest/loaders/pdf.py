"""PDF -> pages: the text layer where it is usable, OCR of a rendering (pdfium) where not.

pypdf opens and validates the file (encryption, page count, page sizes, metadata). The text
layer is read with PDFium by default: it gives the same text about 10x faster than pypdf
(0.58 s against 5.8 s for a 57-page 10-Q here), which keeps PDF parsing hidden behind the
embedder. ``RAG_PDF_TEXT_ENGINE=pypdf`` switches back; either engine falls back to the other
on a page it cannot read.

Memory stays bounded whatever the page count: the file is read once, pages are pulled
a window at a time (pypdf's object cache is dropped between windows), and a page needing
OCR is rendered alone and its bitmap freed before the next.
"""

from __future__ import annotations

import io
import logging
import math
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image
from pypdf import PasswordType, PdfReader, apply_configuration, get_configuration
from pypdf.errors import DependencyError, PdfReadError

from ingest.loaders import LoadedDocument
from ingest.loaders.boxes import align_words
from ingest.loaders.ocr import OcrPool, ensure_ocr_available, in_order, ramp
from ingest.loaders.text import normalize_newlines
from rag.errors import (
    CorruptDocument,
    DependencyUnavailable,
    EmptyDocument,
    EncryptedDocument,
    PageTooLarge,
    TooManyPages,
)
from rag.layout import PageLayout, Rect, rotate_rect
from rag.logs import log_event
from rag.settings import Settings
from rag.types import Page

logger = logging.getLogger(__name__)

PDFIUM_LOCK = threading.Lock()
"""PDFium is not thread-safe, not even across different documents; ingestion workers are threads."""

_CID = re.compile(r"\(cid:\d+\)")
_BLANK_RUNS = re.compile(r"\n{3,}")
_GARBAGE_SHARE = 0.5
"""A text layer that is mostly ``(cid:n)`` codes or U+FFFD is an unmapped font, not text."""


_PYPDF_LIMITS = get_configuration().with_overwrites(
    array_maximum_element_count=1_000_000, dictionary_maximum_element_count=1_000_000
)
"""pypdf's parsing limits, raised tenfold: real 10-Qs (Microsoft's 2023 Q1 and Q2 in the Docugami
set) hold one array of over 100,000 elements, pypdf's default, and were refused as corrupt. Still
bounded: the limit protects memory against hostile files. The limits are a context variable,
so they are applied around each stretch of pypdf work (ingestion runs in worker threads)."""


def load_pdf(path: Path, settings: Settings) -> LoadedDocument:
    """Open once, validate (encryption, page count, page sizes) eagerly, yield pages lazily."""
    data = path.read_bytes()
    if not data:
        raise EmptyDocument("The file is empty (0 bytes)")
    with apply_configuration(_PYPDF_LIMITS):
        reader, page_count = _validated(data, settings)
        title = _title(reader)
    return LoadedDocument(
        kind="pdf", page_count=page_count, title=title, pages=_pages(reader, data, page_count, settings)
    )


def check_pdf(path: Path, settings: Settings) -> None:
    """The page count and page sizes, as ``load_pdf`` checks them: at upload, before a job exists."""
    with apply_configuration(_PYPDF_LIMITS):
        _validated(path.read_bytes(), settings)


def _validated(data: bytes, settings: Settings) -> tuple[PdfReader, int]:
    """Opened (decrypted if it may be), its page count and page sizes within the limits."""
    reader = _open(data)
    page_count = _page_count(reader, settings)
    _check_page_sizes(reader, settings)
    return reader, page_count


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        encrypted = reader.is_encrypted
    except DependencyError as exc:
        raise DependencyUnavailable(f"Cannot decrypt this PDF: {exc}") from exc
    except Exception as exc:  # pypdf raises many exception types on malformed input
        raise CorruptDocument("The PDF cannot be opened: it is corrupt or truncated") from exc
    if encrypted:
        try:
            unlocked = reader.decrypt("") != PasswordType.NOT_DECRYPTED
        except DependencyError as exc:
            raise DependencyUnavailable(f"Cannot decrypt this PDF: {exc}") from exc
        except Exception as exc:
            raise EncryptedDocument("The PDF's encryption cannot be read") from exc
        if not unlocked:
            raise EncryptedDocument("The PDF is password-protected")
    return reader


def _page_count(reader: PdfReader, settings: Settings) -> int:
    try:
        count = len(reader.pages)
    except DependencyError as exc:
        raise DependencyUnavailable(f"Cannot decrypt this PDF: {exc}") from exc
    except Exception as exc:
        raise CorruptDocument("The PDF's page tree cannot be read") from exc
    if count == 0:
        raise EmptyDocument("The PDF has no pages")
    if count > settings.max_pdf_pages:
        raise TooManyPages(
            f"The PDF has {count} pages; the limit is {settings.max_pdf_pages}",
            pages=count,
            limit=settings.max_pdf_pages,
        )
    return count


def _check_page_sizes(reader: PdfReader, settings: Settings) -> None:
    limit = settings.max_page_side_points
    for index, page in enumerate(reader.pages):
        try:
            box = page.mediabox
            side = max(abs(float(box.width)), abs(float(box.height))) * float(page.user_unit)
        except Exception as exc:
            raise CorruptDocument(f"Page {index + 1} has no readable size") from exc
        if side > limit:
            raise PageTooLarge(
                f"Page {index + 1} is {side:.0f} pt on a side; the limit is {limit:.0f} pt",
                page=index + 1,
                limit=limit,
            )


def _title(reader: PdfReader) -> str | None:
    try:
        title = reader.metadata.title if reader.metadata else None
    except Exception:  # a broken Info dictionary costs the title, not the document
        return None
    title = " ".join(str(title or "").split())
    return title or None


def needs_ocr(text: str, settings: Settings) -> bool:
    """Whether a text layer is too short or too garbled to trust."""
    compact = "".join(text.split())
    return len(compact) < settings.ocr_min_chars or is_garbage(compact, settings)


def is_garbage(compact: str, settings: Settings) -> bool:
    """Unmapped glyphs show up as ``(cid:n)``, U+FFFD, control or private-use characters."""
    if not compact:
        return False
    unmapped = sum(len(m) for m in _CID.findall(compact)) + compact.count("\ufffd")
    if unmapped / len(compact) > _GARBAGE_SHARE:
        return True
    printable = sum(1 for ch in compact if ch.isprintable() and ch != "\ufffd")
    return printable / len(compact) < settings.ocr_min_printable_ratio


def clean_text_layer(text: str) -> str:
    lines = normalize_newlines(text).replace("\x00", "").split("\n")
    return _BLANK_RUNS.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def _pages(reader: PdfReader, data: bytes, page_count: int, settings: Settings) -> Iterator[Page]:
    """Pages in order; up to a window of pages ahead is read (and its OCR started) meanwhile,
    the first windows smaller (1, 2, 4 pages) so the first page is out early."""
    renderer = _Renderer(data, settings)
    pool = OcrPool(settings)
    window = max(1, settings.pdf_window_pages)

    def pending() -> Iterator[Callable[[], Page]]:
        start = 0
        for size in ramp(window):
            if start >= page_count:
                return
            stop = min(start + size, page_count)
            with apply_configuration(_PYPDF_LIMITS):
                texts = [_text_layer(reader, renderer, index, settings) for index in range(start, stop)]
            reader.resolved_objects.clear()  # pypdf caches every object it resolves
            for index, (text, layout) in zip(range(start, stop), texts, strict=True):
                yield _page(index, text, layout, renderer, settings, pool)
            start = stop

    try:
        yield from in_order(pending(), window)
    finally:
        pool.close()
        renderer.close()


def _text_layer(
    reader: PdfReader, renderer: _Renderer, index: int, settings: Settings
) -> tuple[str, PageLayout | None]:
    """The page's cleaned text layer and where its words are (PDFium only: pypdf has no boxes)."""
    if settings.pdf_text_engine == "pdfium":
        read = renderer.text(index)
        if read is not None:
            raw, rects, (width, height) = read
            text = clean_text_layer(raw)
            return text, align_words(text, raw, rects, width, height)
    return _extract(reader, index), None


def _extract(reader: PdfReader, index: int) -> str:
    try:
        return clean_text_layer(reader.pages[index].extract_text())
    except PdfReadError as exc:
        raise CorruptDocument(f"Page {index + 1} of the PDF is corrupt or truncated", page=index + 1) from exc
    except Exception as exc:  # a pypdf bug on one page: let OCR of its rendering try instead
        log_event(logger, "pdf_text_layer_failed", logging.WARNING, page=index + 1, error=repr(exc))
        return ""


def _page(
    index: int, text: str, layout: PageLayout | None, renderer: _Renderer, settings: Settings, pool: OcrPool
) -> Callable[[], Page]:
    """The page, once called; a page that needs OCR is rendered now and read by the pool meanwhile."""
    layer = Page(page_no=index + 1, text=text, source="text-layer", layout=layout)
    if not needs_ocr(text, settings):
        return _ready(layer)
    compact_layer = "".join(text.split())
    layer_usable = not is_garbage(compact_layer, settings)
    if not settings.ocr_enabled:  # a garbled layer would only pollute the index
        return _ready(layer if layer_usable else Page(page_no=index + 1, text="", source="text-layer"))
    image, dpi = renderer.render(index)
    size = renderer.size(index)
    future = pool.submit(image, dpi)

    def finish() -> Page:
        result = future.result()
        if layer_usable and len("".join(result.text.split())) <= len(compact_layer):
            return layer
        return Page(
            page_no=index + 1,
            text=result.text,
            source="ocr",
            ocr_confidence=result.confidence,
            layout=result.layout(*size) if result.words else None,
        )

    return finish


def _ready(page: Page) -> Callable[[], Page]:
    return lambda: page


def _size(page: pdfium.PdfPage) -> tuple[float, float]:
    width, height = page.get_size()
    return float(width), float(height)


def _char_rects(page: pdfium.PdfPage, textpage: pdfium.PdfTextPage, raw: str) -> list[Rect | None]:
    """Each character's loose box (the font's full height, so lines of highlight meet) as fractions
    of the crop box, turned as the page is displayed; ``None`` for whitespace and generated
    characters. Empty when PDFium's character count disagrees with its text (no layout then)."""
    count = textpage.count_chars()
    if count != len(raw):
        return []
    left, bottom, right, top = page.get_cropbox()
    width, height = (right - left) or 1.0, (top - bottom) or 1.0
    rotation = page.get_rotation()
    rects: list[Rect | None] = []
    for i, ch in enumerate(raw):
        if ch.isspace() or ch == "\x00":
            rects.append(None)
            continue
        try:
            x0, y0, x1, y1 = textpage.get_charbox(i, loose=True)
        except pdfium.PdfiumError:
            rects.append(None)
            continue
        if x1 <= x0 or y1 <= y0:
            rects.append(None)
            continue
        rect = ((x0 - left) / width, (top - y1) / height, (x1 - left) / width, (top - y0) / height)
        rects.append(rotate_rect(rect, rotation))
    return rects


def render_pdf_page(path: Path, page_no: int, settings: Settings) -> tuple[Image.Image, int]:
    """Render one page (1-based) as OCR would see it, with its dpi; for benchmarks and debugging."""
    renderer = _Renderer(path.read_bytes(), settings)
    try:
        return renderer.render(page_no - 1)
    finally:
        renderer.close()


class _Renderer:
    """Opens the PDF in PDFium only if some page needs OCR, and renders one page at a time."""

    def __init__(self, data: bytes, settings: Settings) -> None:
        self._data = data
        self._settings = settings
        self._document: pdfium.PdfDocument | None = None

    def _open(self) -> pdfium.PdfDocument:
        if self._document is None:
            with PDFIUM_LOCK:
                try:
                    self._document = pdfium.PdfDocument(self._data)
                except pdfium.PdfiumError as exc:
                    raise CorruptDocument("The PDF cannot be opened by PDFium") from exc
        return self._document

    def text(self, index: int) -> tuple[str, list[Rect | None], tuple[float, float]] | None:
        """The page's text layer, each character's box as a fraction of the displayed page (``None``
        for characters PDFium generated) and the displayed size in points; ``None`` where PDFium
        cannot read the page (pypdf then tries)."""
        try:
            document = self._open()
        except CorruptDocument:
            return None
        with PDFIUM_LOCK:
            try:
                page = document[index]
                try:
                    textpage = page.get_textpage()
                    try:
                        raw = str(textpage.get_text_range())
                        return raw, _char_rects(page, textpage, raw), _size(page)
                    finally:
                        textpage.close()
                finally:
                    page.close()
            except pdfium.PdfiumError:
                return None

    def size(self, index: int) -> tuple[float, float]:
        """The displayed page size in points (rotation applied), as a rendering shows it."""
        document = self._open()
        with PDFIUM_LOCK:
            page = document[index]
            try:
                return _size(page)
            finally:
                page.close()

    def render(self, index: int) -> tuple[Image.Image, int]:
        """Grayscale at ``ocr_dpi`` (less if over ``max_image_pixels``), /Rotate applied; with its dpi."""
        ensure_ocr_available(self._settings)
        self._open()
        assert self._document is not None
        with PDFIUM_LOCK:
            try:
                page = self._document[index]
            except pdfium.PdfiumError as exc:
                raise CorruptDocument(f"Page {index + 1} cannot be rendered", page=index + 1) from exc
            try:
                width, height = page.get_size()
                scale = self._settings.ocr_dpi / 72
                pixels = width * height * scale * scale
                if pixels > self._settings.max_image_pixels:
                    scale *= math.sqrt(self._settings.max_image_pixels / pixels)
                bitmap = page.render(scale=scale, grayscale=True)
                try:
                    return bitmap.to_pil().copy(), round(scale * 72)  # to_pil() shares the bitmap's buffer
                finally:
                    bitmap.close()
            except pdfium.PdfiumError as exc:
                raise CorruptDocument(f"Page {index + 1} cannot be rendered", page=index + 1) from exc
            finally:
                page.close()

    def close(self) -> None:
        if self._document is not None:
            with PDFIUM_LOCK:
                self._document.close()
            self._document = None
