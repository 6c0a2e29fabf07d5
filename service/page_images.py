"""A stored document's page as an image, with a cited passage painted over it.

PDF pages are rendered by PDFium at the requested width; images are their own pages (EXIF
orientation applied, the frame of a multi-page TIFF), scaled to that width. The passage is
the words' boxes recorded at ingestion (``rag.layout``), painted as translucent rectangles,
so what is highlighted is exactly what the service read there, text layer or OCR.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path

import pypdfium2 as pdfium
from PIL import Image, ImageDraw, ImageOps

from ingest.loaders.pdf import PDFIUM_LOCK
from rag.errors import CorruptDocument, PageNotAvailable
from rag.layout import Rect

MIN_WIDTH, MAX_WIDTH, DEFAULT_WIDTH = 100, 2000, 1000
MAX_PIXELS = MAX_WIDTH * MAX_WIDTH * 2
"""A page image is at most 8 Mpx whatever its shape (a very tall page is rendered narrower)."""
HIGHLIGHT = (255, 212, 0, 110)
"""Translucent yellow: the words stay readable under it."""
IMAGE_KINDS = frozenset({"png", "jpeg", "tiff"})


def render_page(original: Path, kind: str, page_no: int, width: int, highlight: Sequence[Rect] = ()) -> bytes:
    """The page as PNG bytes, ``width`` pixels wide (bounded), with ``highlight`` painted over it."""
    width = min(max(width, MIN_WIDTH), MAX_WIDTH)
    if kind == "pdf":
        image = _pdf_page(original, page_no, width)
    elif kind in IMAGE_KINDS:
        image = _image_page(original, page_no, width)
    else:
        raise PageNotAvailable(f"a {kind} document has no page images; its text is in the citation")
    try:
        if highlight:
            image = _painted(image, highlight)
        out = io.BytesIO()
        image.save(out, format="PNG", optimize=False, compress_level=3)
        return out.getvalue()
    finally:
        image.close()


def _scale_for(width_px: float, height_px: float, width: int) -> float:
    scale = width / width_px
    if width_px * height_px * scale * scale > MAX_PIXELS:
        scale = math.sqrt(MAX_PIXELS / (width_px * height_px))
    return scale


def _pdf_page(path: Path, page_no: int, width: int) -> Image.Image:
    with PDFIUM_LOCK:
        try:
            document = pdfium.PdfDocument(path)
        except pdfium.PdfiumError as exc:
            raise CorruptDocument("the stored PDF cannot be opened") from exc
        try:
            if not 1 <= page_no <= len(document):
                raise PageNotAvailable(f"the document has no page {page_no}")
            page = document[page_no - 1]
            try:
                page_width, page_height = page.get_size()
                bitmap = page.render(scale=_scale_for(page_width, page_height, width))
                try:
                    image: Image.Image = bitmap.to_pil().convert("RGB")  # a copy: the buffer is freed next
                    return image
                finally:
                    bitmap.close()
            finally:
                page.close()
        finally:
            document.close()


def _image_page(path: Path, page_no: int, width: int) -> Image.Image:
    # PIL's bomb limit is the one the image loader set (``RAG_MAX_IMAGE_PIXELS``), which this image
    # passed when it was stored; nothing here changes it
    with Image.open(path) as image:
        frames = int(getattr(image, "n_frames", 1))
        if not 1 <= page_no <= frames:
            raise PageNotAvailable(f"the document has no page {page_no}")
        image.seek(page_no - 1)
        frame = ImageOps.exif_transpose(image).convert("RGB")
    scale = _scale_for(frame.width, frame.height, width)
    size = (max(1, round(frame.width * scale)), max(1, round(frame.height * scale)))
    resized = frame.resize(size, Image.Resampling.LANCZOS)
    frame.close()
    return resized


def _painted(image: Image.Image, rects: Sequence[Rect]) -> Image.Image:
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    w, h = image.size
    for x0, y0, x1, y1 in rects:
        draw.rectangle((x0 * w, y0 * h, x1 * w, y1 * h), fill=HIGHLIGHT)
    painted = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    overlay.close()
    return painted


__all__ = ["DEFAULT_WIDTH", "MAX_WIDTH", "MIN_WIDTH", "render_page"]
