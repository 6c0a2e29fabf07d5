"""OCR seconds per page on the scanned FinanceBench evidence pages (tesseract, one thread)."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from rag.settings import load_settings


def run_ocr_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    from ingest.loaders.ocr import ocr_image
    from ingest.loaders.pdf import render_pdf_page

    settings = load_settings()
    folder = datasets / "financebench_scanned_evidence"
    names: list[str] = []
    for line in (folder / "manifest.jsonl").read_text().splitlines():
        names.extend(json.loads(line)["scanned_pages"])
    names = sorted(set(names))[:: 12 if quick else 6]
    render_s, ocr_s, confidence = [], [], []
    for name in names:
        t = time.perf_counter()
        image, dpi = render_pdf_page(folder / "pdfs" / name, 1, settings)
        render_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        result = ocr_image(image, settings, dpi=dpi)
        ocr_s.append(time.perf_counter() - t)
        confidence.append(result.confidence or 0.0)
    out["ocr"] = {
        "pages": len(names),
        "dpi": settings.ocr_dpi,
        "omp_thread_limit": settings.ocr_thread_limit,
        "render_s_per_page_median": round(statistics.median(render_s), 3),
        "ocr_s_per_page_median": round(statistics.median(ocr_s), 3),
        "ocr_s_per_page_p95": round(sorted(ocr_s)[int(0.95 * (len(ocr_s) - 1))], 3),
        "mean_word_confidence": round(statistics.mean(confidence), 1),
    }
