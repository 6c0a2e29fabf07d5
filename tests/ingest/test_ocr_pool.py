"""OCR on several pages at once reads exactly what one page at a time reads, in page order."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from eval.bench.ocr_pool import scanned_pages_pdf
from rag.settings import Settings
from tests.ingest.conftest import read_all


def test_the_pool_reads_the_same_text_as_one_process(
    datasets: Path, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    pdf = scanned_pages_pdf(datasets, 5, tmp_path / "scanned.pdf")
    _, one = read_all(pdf, make_settings(ocr_workers=1))
    _, pool = read_all(pdf, make_settings(ocr_workers=3))
    assert [p.page_no for p in pool] == [1, 2, 3, 4, 5]
    assert all(p.source == "ocr" for p in pool)
    assert pool == one
