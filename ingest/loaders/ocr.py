"""Tesseract OCR of one image -> text and mean word confidence.

One ``image_to_data`` call gives both the words and their confidences (running
``image_to_string`` as well would double the cost). Pages that read badly are checked
for orientation with tesseract's OSD and read again the right way up.

Tesseract is told the resolution when we know it (we rendered the page): the
resolution in an image header is often a default such as 96 dpi, and a wrong value
makes tesseract's layout analysis drop whole paragraphs; unknown, it estimates.

Tesseract runs with ``OMP_THREAD_LIMIT`` set to ``settings.ocr_thread_limit`` in its own
environment only (``ingest.loaders.tesseract``); nothing here changes ``os.environ``.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple, TypeVar

from PIL import Image

from ingest.loaders.tesseract import Tesseract, TesseractFailed, TesseractMissing
from rag.errors import OcrUnavailable
from rag.layout import PageLayout, rotate_rect
from rag.settings import Settings

T = TypeVar("T")

PAGE_SEGMENTATION_MODE = 6
"""Tesseract ``--psm``: 6 reads the page as one block of text. Automatic layout analysis
(3) classed paragraphs of slightly skewed scans as pictures and dropped them, and split
table rows from their labels. Measured here on the 69 FinanceBench scanned pages: mean
word recall 0.953 (psm 6) vs 0.939 (psm 3), pages at >= 0.9: 66 vs 63 (psm 3 lost half
of two pages); on SROIE receipts the gold total was found in 17/20 vs 12/20. The price:
multi-column pages are read line by line across the columns, which is what keeps a table
row's figures on its label's line for the table reader (``ingest.tables``): of the 905 rows
it rewrites from the text layers of those 69 pages, 811 have their label and every figure
on one line of the OCR text, and the other 94 have a misread digit, dash or label word, not
a row split apart. (``-c preserve_interword_spaces=1`` only changes tesseract's plain-text output; the
word table read here came out identical with it, so it is not passed.)"""

LOW_CONFIDENCE = 60.0
"""Mean word confidence under which a page may be sideways or upside down: upright
printed pages read at 85-96 here, receipts at 45-87, sideways pages at 40-45."""

MIN_WORDS_TO_ROTATE = 10
"""Blank pages and pictures yield a handful of words at most; turning them around is wasted time."""


class OcrResult(NamedTuple):
    """``confidence`` is the mean word confidence (0-100), ``None`` when no word was found.

    ``boxes``: each word's ``(start, end)`` in ``text`` and its ``(left, top, right, bottom)`` in
    pixels of the image tesseract read (``image_size``), which is the page turned ``rotation``
    degrees counter-clockwise."""

    text: str
    confidence: float | None
    rotation: int = 0
    words: int = 0
    boxes: tuple[tuple[int, int, int, int, int, int], ...] = ()
    image_size: tuple[int, int] = (0, 0)

    def layout(self, width: float, height: float) -> PageLayout:
        """The words' boxes on the upright page, whose displayed size is ``width`` x ``height``."""
        w, h = self.image_size
        w, h = w or 1, h or 1
        return PageLayout.from_words(
            width,
            height,
            (
                (start, end, rotate_rect((left / w, top / h, right / w, bottom / h), self.rotation))
                for start, end, left, top, right, bottom in self.boxes
            ),
        )


def ocr_workers(settings: Settings) -> int:
    """Pages OCR'd at once: ``RAG_OCR_WORKERS``, or the cores shared among the ingestion workers."""
    if settings.ocr_workers > 0:
        return settings.ocr_workers
    return max(1, (os.cpu_count() or 1) // max(1, settings.workers))


class OcrPool:
    """OCR of several pages at once, in submission order for the caller to collect.

    Each page is its own tesseract process (``ingest.loaders.tesseract``) with one OpenMP thread,
    so threads that wait on them are a pool of processes sized to the cores; they inherit the
    parser process's memory limit (``ingest.isolation``). Tesseract with one thread per page, pages
    in parallel, beats one page with every thread: its OpenMP parts are a fraction of a page's time.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.workers = ocr_workers(settings)
        self._executor: ThreadPoolExecutor | None = None

    def submit(self, image: Image.Image, dpi: int | None = None) -> Future[OcrResult]:
        """OCR ``image`` (closed once read) on a free worker."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="ocr")
        return self._executor.submit(_read_and_close, image, self.settings, dpi)

    def close(self) -> None:
        """Wait for the pages being read; drop the ones not started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


def in_order(pending: Iterable[Callable[[], T]], ahead: int) -> Iterator[T]:
    """Call each of ``pending`` in order, keeping up to ``ahead`` more started (pulled) meanwhile:
    a loader's pages, each submitted to the pool as it is pulled and collected when called.
    The look-ahead starts at one and doubles with each page given, so the first page goes out
    after two are started rather than ``ahead + 1`` (on a text-layer filing the chunker and the
    embedder started a tenth of a second later waiting for 16 pages of text)."""
    started: collections.deque[Callable[[], T]] = collections.deque()
    allowed = min(1, ahead)
    for item in pending:
        started.append(item)
        while len(started) > allowed:
            yield started.popleft()()
            allowed = min(ahead, 2 * allowed)
    while started:
        yield started.popleft()()


def ramp(limit: int) -> Iterator[int]:
    """Window sizes 1, 2, 4, ... up to ``limit``, then ``limit`` for ever: the first pages of a
    document are read before the rest (the reader and embedder downstream start on them)."""
    limit = max(1, limit)
    size = 1
    while True:
        yield min(size, limit)
        size = min(limit, 2 * size)


def _read_and_close(image: Image.Image, settings: Settings, dpi: int | None) -> OcrResult:
    try:
        return ocr_image(image, settings, dpi=dpi)
    finally:
        image.close()


def ensure_ocr_available(settings: Settings) -> None:
    """Fail early with ``OcrUnavailable`` if OCR is off, tesseract is missing or lacks the language."""
    if not settings.ocr_enabled:
        raise OcrUnavailable("OCR is disabled (RAG_OCR_ENABLED=false)")
    try:
        installed = tesseract(settings).languages()
    except TesseractMissing as exc:
        raise OcrUnavailable("Tesseract OCR is not installed (or not on PATH)") from exc
    except (TesseractFailed, OSError) as exc:
        raise OcrUnavailable(f"Tesseract OCR cannot run: {exc}") from exc
    missing = [lang for lang in settings.ocr_language.split("+") if lang not in installed]
    if missing:
        raise OcrUnavailable(f"Tesseract has no language data for: {', '.join(missing)}")


def ocr_image(image: Image.Image, settings: Settings, dpi: int | None = None) -> OcrResult:
    """Read the text of ``image``, turning it the right way up first if it reads badly.

    ``dpi``: the true resolution, when known (a rendered PDF page); else tesseract estimates it.
    A page with words but low confidence is tried in the orientation OSD suggests, then in
    the other quarter turns (OSD is unreliable on pages of figures), keeping the best read.
    """
    image = _prepare(image)
    best = _recognise(image, settings, dpi)
    if _good(best) or best.words < MIN_WORDS_TO_ROTATE:
        return best
    suggested = detect_rotation(image, settings)
    for rotation in dict.fromkeys(r for r in (suggested, 90, 270, 180) if r):
        candidate = _recognise(image.rotate(rotation, expand=True), settings, dpi)
        if (candidate.confidence or -1.0) > (best.confidence or -1.0):
            best = candidate._replace(rotation=rotation)
        if _good(best):
            break
    return best


def _good(result: OcrResult) -> bool:
    return result.confidence is not None and result.confidence >= LOW_CONFIDENCE


def detect_rotation(image: Image.Image, settings: Settings) -> int:
    """Counter-clockwise degrees that make ``image`` upright per OSD; 0 when OSD cannot tell.

    OSD needs ``osd.traineddata`` and enough text; without either it fails, which is not
    an error for the document, so it is skipped.
    """
    try:
        osd = tesseract(settings).osd(image)
        rotation = int(osd["Rotate"]) % 360
    except (TesseractFailed, KeyError, ValueError, TypeError):
        return 0
    return rotation if rotation in (90, 180, 270) else 0


def tesseract(settings: Settings) -> Tesseract:
    """The tesseract command as the settings configure it (its thread limit)."""
    return Tesseract(thread_limit=settings.ocr_thread_limit)


def _recognise(image: Image.Image, settings: Settings, dpi: int | None) -> OcrResult:
    args = ["--psm", str(PAGE_SEGMENTATION_MODE)]
    if dpi:
        args += ["--dpi", str(dpi)]
        image.format = "BMP"  # our own copy; uncompressed is faster to hand over, and --dpi wins
    else:
        image.format = "PNG"  # written without a resolution, so tesseract estimates it
    try:
        data = tesseract(settings).data(image, settings.ocr_language, args)
    except TesseractMissing as exc:
        raise OcrUnavailable("Tesseract OCR is not installed (or not on PATH)") from exc
    except TesseractFailed as exc:
        raise OcrUnavailable(f"Tesseract failed: {exc}") from exc
    return _assemble(data, image.size)


def _assemble(data: dict[str, list[int | str]], image_size: tuple[int, int] = (0, 0)) -> OcrResult:
    """Rebuild text from tesseract's word table: lines by line number, blank line between blocks;
    each word keeps its offsets in that text and its box."""
    text = ""
    line_words = 0
    boxes: list[tuple[int, int, int, int, int, int]] = []
    confidences: list[float] = []
    current: tuple[int, int, int] | None = None
    for i, raw_word in enumerate(data["text"]):
        word = str(raw_word).strip()
        if not word:
            continue
        key = (int(str(data["block_num"][i])), int(str(data["par_num"][i])), int(str(data["line_num"][i])))
        if current is not None and key != current:
            text += "\n\n" if key[:2] != current[:2] else "\n"
            line_words = 0
        elif line_words:
            text += " "
        current = key
        left, top = int(str(data["left"][i])), int(str(data["top"][i]))
        right, bottom = left + int(str(data["width"][i])), top + int(str(data["height"][i]))
        boxes.append((len(text), len(text) + len(word), left, top, right, bottom))
        text += word
        line_words += 1
        confidence = float(str(data["conf"][i]))
        if confidence >= 0:
            confidences.append(confidence)
    mean = round(sum(confidences) / len(confidences), 2) if confidences else None
    return OcrResult(text, mean, words=len(confidences), boxes=tuple(boxes), image_size=image_size)


def _prepare(image: Image.Image) -> Image.Image:
    """Grayscale on a white background, as a copy we may label with a file format."""
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L") if image.mode != "L" else image.copy()
