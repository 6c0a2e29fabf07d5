"""PNG, JPEG and (multi-page) TIFF -> one OCR'd page per frame.

Image headers state the pixel size, so decompression bombs are refused before a single
pixel is decoded; frames are decoded one at a time as pages are pulled.
"""

from __future__ import annotations

import functools
import io
import re
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from ingest.loaders import LoadedDocument
from ingest.loaders.ocr import OcrPool, OcrResult, ensure_ocr_available, in_order
from rag.errors import CorruptDocument, ImageTooLarge, TooManyPages
from rag.settings import Settings
from rag.types import Page

_BOMB_SIZE = re.compile(r"Image size \((\d+) pixels\)")
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)


def load_image(path: Path, settings: Settings) -> LoadedDocument:
    """Check every frame's size up front, then OCR frames lazily (EXIF orientation applied)."""
    ensure_ocr_available(settings)
    image = open_image(path.read_bytes(), settings)
    try:
        frames = _check_frames(image, settings)
    except BaseException:
        image.close()
        raise
    kind = (image.format or "image").lower()
    return LoadedDocument(kind=kind, page_count=frames, title=None, pages=_pages(image, frames, settings))


def check_image(path: Path, settings: Settings) -> None:
    """Every frame's pixel count and the frame count, from headers only: at upload, before a job."""
    with open_image(path.read_bytes(), settings) as image:
        _check_frames(image, settings)


def open_image(data: bytes, settings: Settings) -> Image.Image:
    """Open (header only) and refuse images over ``settings.max_image_pixels``."""
    # PIL only has a module-level bomb limit; set it from the settings on every call so it
    # agrees with ours (it would otherwise refuse large-but-allowed images, or allow more).
    Image.MAX_IMAGE_PIXELS = settings.max_image_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        # PIL's own message states twice the limit (where it stops warning and refuses)
        size = _BOMB_SIZE.search(str(exc))
        stated = f"{int(size.group(1))} pixels" if size else "too many pixels"
        raise ImageTooLarge(
            f"The image has {stated}; the limit is {settings.max_image_pixels} pixels",
            limit=settings.max_image_pixels,
        ) from exc
    except (UnidentifiedImageError, *_DECODE_ERRORS) as exc:
        raise CorruptDocument("The image cannot be read") from exc
    try:
        check_pixels(image.size, settings)
    except ImageTooLarge:
        image.close()
        raise
    return image


def check_pixels(size: tuple[int, int], settings: Settings) -> None:
    width, height = size
    if width * height > settings.max_image_pixels:
        raise ImageTooLarge(
            f"The image is {width}x{height} pixels; the limit is {settings.max_image_pixels} pixels",
            width=width,
            height=height,
            limit=settings.max_image_pixels,
        )


def _check_frames(image: Image.Image, settings: Settings) -> int:
    try:
        frames = int(getattr(image, "n_frames", 1))
        if frames > settings.max_pdf_pages:
            raise TooManyPages(
                f"The image has {frames} pages; the limit is {settings.max_pdf_pages}",
                pages=frames,
                limit=settings.max_pdf_pages,
            )
        for index in range(1, frames):  # frame 0 was checked on open; seeking reads headers only
            image.seek(index)
            check_pixels(image.size, settings)
        image.seek(0)
    except _DECODE_ERRORS as exc:
        raise CorruptDocument("The image's pages cannot be read") from exc
    return frames


def _pages(image: Image.Image, frames: int, settings: Settings) -> Iterator[Page]:
    """Frames decoded in order here, OCR'd a few at once by the pool, yielded in order."""
    pool = OcrPool(settings)

    def pending() -> Iterator[Callable[[], Page]]:
        for index in range(frames):
            try:
                image.seek(index)
                frame = ImageOps.exif_transpose(image)  # decodes this frame only
            except _DECODE_ERRORS as exc:
                raise CorruptDocument(f"Page {index + 1} of the image cannot be decoded") from exc
            size = frame.size  # before the pool reads and closes the frame
            yield functools.partial(_frame_page, index, size, pool.submit(frame))

    try:
        yield from in_order(pending(), pool.workers)
    finally:
        pool.close()
        image.close()


def _frame_page(index: int, size: tuple[int, int], reading: Future[OcrResult]) -> Page:
    result = reading.result()
    return Page(
        page_no=index + 1,
        text=result.text,
        source="ocr",
        ocr_confidence=result.confidence,
        layout=result.layout(*size) if result.words else None,
    )
