"""Images: real SROIE receipts (JPEG, multi-page TIFF), EXIF orientation, sideways scans."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pypdfium2 as pdfium
import pytest
from PIL import Image

from ingest.loaders.ocr import LOW_CONFIDENCE, ocr_image
from rag.settings import Settings

from .conftest import read_all, word_recall

RECEIPTS = ["000", "001", "002", "003", "004"]


def receipt(datasets: Path, name: str) -> tuple[Path, str]:
    root = datasets / "sroie_receipts_scanned"
    return root / "img" / f"{name}.jpg", json.loads((root / "key" / f"{name}.json").read_text())["total"]


def has_amount(text: str, amount: str) -> bool:
    """The amount as a whole number; OCR reading its decimal point as a comma still counts."""
    pattern = re.escape(amount).replace(r"\.", "[.,]")
    return re.search(rf"(?<![\d.,]){pattern}(?![\d])", text) is not None


@pytest.mark.slow
def test_receipt_totals_jpeg(datasets: Path, settings: Settings) -> None:
    for name in RECEIPTS[:3]:
        path, total = receipt(datasets, name)
        document, pages = read_all(path, settings)
        assert (document.kind, document.page_count, document.title) == ("jpeg", 1, None)
        (page,) = pages
        assert (page.page_no, page.source) == (1, "ocr")
        assert page.ocr_confidence is not None and 0 < page.ocr_confidence <= 100
        assert has_amount(page.text, total), f"receipt {name}: total {total} not in OCR text"


@pytest.mark.slow
def test_multipage_tiff_is_one_page_per_frame(datasets: Path, settings: Settings, tmp_path: Path) -> None:
    frames = [receipt(datasets, name) for name in RECEIPTS[3:]]
    images = [Image.open(path) for path, _ in frames]
    path = tmp_path / "receipts.tif"
    images[0].save(path, save_all=True, append_images=images[1:], compression="tiff_lzw")
    document, pages = read_all(path, settings)
    assert (document.kind, document.page_count) == ("tiff", 2)
    assert [p.page_no for p in pages] == [1, 2]
    for page, (_, total) in zip(pages, frames, strict=True):
        assert has_amount(page.text, total)


@pytest.mark.slow
def test_exif_orientation_is_applied(datasets: Path, settings: Settings, tmp_path: Path) -> None:
    # Stored transposed (mirrored and turned) with EXIF orientation 5 saying so: only honouring
    # EXIF makes this readable, since no rotation can undo a mirror image.
    source, total = receipt(datasets, RECEIPTS[0])
    with Image.open(source) as image:
        stored = image.transpose(Image.Transpose.TRANSPOSE)
    exif = Image.Exif()
    exif[0x0112] = 5
    path = tmp_path / "mirrored.jpg"
    stored.save(path, exif=exif, quality=95)
    _, pages = read_all(path, settings)
    assert has_amount(pages[0].text, total)


def test_transparent_png_is_read_on_white(settings: Settings, tmp_path: Path, datasets: Path) -> None:
    # Black ink whose shape lives only in the alpha channel: flattening that ignores alpha is all black.
    source, _ = receipt(datasets, RECEIPTS[0])
    with Image.open(source) as image:
        gray = image.convert("L")
    top = gray.crop((0, 0, gray.width, gray.height // 4))
    ink = Image.new("RGBA", top.size, (0, 0, 0, 0))
    ink.putalpha(top.point(lambda v: 255 - v))
    path = tmp_path / "ink.png"
    ink.save(path)
    _, pages = read_all(path, settings)
    reference = ocr_image(top, settings)
    assert reference.words > 10
    assert word_recall(reference.text, pages[0].text) >= 0.9


@pytest.mark.slow
def test_sideways_scan_is_turned_upright(
    datasets: Path, settings: Settings, tmp_path: Path, text_layer_page: Callable[[str, int], str]
) -> None:
    scanned = datasets / "financebench_scanned_evidence" / "pdfs" / "AMCOR_2023_10K_p49.pdf"
    document = pdfium.PdfDocument(scanned)
    try:
        upright = document[0].render(scale=150 / 72, grayscale=True).to_pil().copy()
    finally:
        document.close()
    path = tmp_path / "sideways.png"
    upright.rotate(90, expand=True).save(path)
    _, pages = read_all(path, settings)
    assert pages[0].ocr_confidence is not None and pages[0].ocr_confidence >= LOW_CONFIDENCE
    assert word_recall(text_layer_page("AMCOR_2023_10K", 49), pages[0].text) >= 0.9
