"""Where a page's words sit, so that a citation's character offsets become rectangles on the page.

A page keeps one box per word (PDFium's character boxes joined for text-layer pages,
tesseract's word boxes for OCR'd ones), each with the word's offsets in the page text. Boxes
are fractions of the page as it is displayed (rotation applied, origin top-left), stored as
16-bit integers: a 300-page 10-K's boxes take about 2.5 MB, kept per page in the catalog, not
per character in the vector store. Words are the unit because every text the service stores
(cleaned, tables rewritten) keeps words whole: offsets move, words do not.
"""

from __future__ import annotations

import zlib
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

__all__ = ["SCALE", "PageLayout", "Rect", "WordBox", "rotate_rect"]

SCALE = 65535
"""A box coordinate is stored as ``round(fraction * SCALE)``: about 0.01 pt on a letter page."""

Rect = tuple[float, float, float, float]
"""``(x0, y0, x1, y1)`` as fractions of the page, origin top-left, ``x0 <= x1``, ``y0 <= y1``."""

WordBox = tuple[int, int, Rect]
"""A word's ``(start, end)`` offsets in the page text and its rectangle."""


def _clamp(value: float) -> int:
    return min(SCALE, max(0, round(value * SCALE)))


def rotate_rect(rect: Rect, clockwise: int) -> Rect:
    """``rect`` on the page turned ``clockwise`` degrees (a multiple of 90), as fractions again."""
    x0, y0, x1, y1 = rect
    turn = clockwise % 360
    if turn == 90:
        x0, y0, x1, y1 = 1 - y1, x0, 1 - y0, x1
    elif turn == 180:
        x0, y0, x1, y1 = 1 - x1, 1 - y1, 1 - x0, 1 - y0
    elif turn == 270:
        x0, y0, x1, y1 = y0, 1 - x1, y1, 1 - x0
    return (x0, y0, x1, y1)


@dataclass(frozen=True, slots=True)
class PageLayout:
    """A page's size (points for PDFs, pixels for images) and its words' offsets and boxes.

    ``spans`` holds ``start, end`` per word and ``boxes`` ``x0, y0, x1, y1`` per word in
    ``1/SCALE`` of the page; words are in reading order (the order of the page text).
    """

    width: float
    height: float
    spans: array[int]
    boxes: array[int]

    @classmethod
    def from_words(cls, width: float, height: float, words: Iterable[WordBox]) -> PageLayout:
        spans, boxes = array("I"), array("H")
        for start, end, (x0, y0, x1, y1) in words:
            spans.extend((start, end))
            boxes.extend((_clamp(min(x0, x1)), _clamp(min(y0, y1)), _clamp(max(x0, x1)), _clamp(max(y0, y1))))
        return cls(width, height, spans, boxes)

    def __len__(self) -> int:
        return len(self.spans) // 2

    def words(self) -> Iterator[WordBox]:
        for i in range(len(self)):
            x0, y0, x1, y1 = self.boxes[4 * i : 4 * i + 4]
            yield self.spans[2 * i], self.spans[2 * i + 1], (x0 / SCALE, y0 / SCALE, x1 / SCALE, y1 / SCALE)

    def highlight(self, start: int, end: int) -> list[Rect]:
        """Rectangles covering the words that overlap ``start..end`` of the page text, one per run of
        words on the same line (so a passage reads as lines of highlight, not a cloud of words)."""
        lines: list[list[float]] = []
        for word_start, word_end, (x0, y0, x1, y1) in self.words():
            if word_end <= start or word_start >= end:
                continue
            if lines and _same_line(lines[-1], y0, y1) and x0 >= lines[-1][0] - 1e-3:
                line = lines[-1]
                line[0], line[1] = min(line[0], x0), min(line[1], y0)
                line[2], line[3] = max(line[2], x1), max(line[3], y1)
            else:
                lines.append([x0, y0, x1, y1])
        return [(a, b, c, d) for a, b, c, d in lines]

    def remapped(self, edits: Sequence[tuple[int, int, int, int]]) -> PageLayout:
        """This layout for a text rewritten by ``edits`` (sorted ``(old_start, old_end, new_start,
        new_end)``, as ``ingest.tables.TablePage`` records them): a word inside a rewritten span
        takes the whole new span (a table row is highlighted as a row), the others shift."""
        if not edits:
            return self
        spans = array("I")
        i = 0
        for w in range(len(self)):
            start, end = self.spans[2 * w], self.spans[2 * w + 1]
            while i < len(edits) and edits[i][1] <= start:
                i += 1
            if i < len(edits) and edits[i][0] <= start < edits[i][1]:
                spans.extend((edits[i][2], edits[i][3]))
                continue
            shift = edits[i - 1][3] - edits[i - 1][1] if i else 0
            spans.extend((start + shift, end + shift))
        return PageLayout(self.width, self.height, spans, self.boxes)

    def to_blobs(self) -> tuple[bytes, bytes]:
        """Compressed spans and boxes, for the catalog (little-endian on every machine)."""
        return _pack(self.spans), _pack(self.boxes)

    @classmethod
    def from_blobs(cls, width: float, height: float, spans: bytes, boxes: bytes) -> PageLayout:
        return cls(width, height, _unpack("I", spans), _unpack("H", boxes))


def _same_line(line: list[float], y0: float, y1: float) -> bool:
    """Vertical overlap of at least half the shorter height."""
    overlap = min(line[3], y1) - max(line[1], y0)
    return overlap >= 0.5 * min(line[3] - line[1], y1 - y0)


def _pack(values: array[int]) -> bytes:
    copy = array(values.typecode, values)
    if copy.itemsize > 1 and array("H", [1]).tobytes()[0] == 0:  # big-endian host
        copy.byteswap()
    return zlib.compress(copy.tobytes(), 6)


def _unpack(typecode: str, blob: bytes) -> array[int]:
    values = array(typecode)
    values.frombytes(zlib.decompress(blob))
    if values.itemsize > 1 and array("H", [1]).tobytes()[0] == 0:
        values.byteswap()
    return values
