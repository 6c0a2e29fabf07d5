"""``make bench`` section ``page_render``: the time to show a cited passage on its page.

A real 10-K's pages (text layer) and scanned pages (OCR) are ingested once; then, for cited
chunks across them, the page is rendered at the default width with the chunk highlighted,
exactly as ``GET /v1/documents/{id}/pages/{n}?chunk=`` does (page record read from the
catalog, rectangles from the word boxes, PDFium render, paint, PNG encode), beside the same
render without a highlight. Medians and p95 of interleaved rounds.
"""

from __future__ import annotations

import io
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium


def _pages_of(source: Path, first: int, count: int, target: Path) -> Path:
    out = pdfium.PdfDocument.new()
    src = pdfium.PdfDocument(source)
    out.import_pages(src, list(range(first, min(first + count, len(src)))))
    buffer = io.BytesIO()
    out.save(buffer)
    target.write_bytes(buffer.getvalue())
    return target


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
    }


def run_page_render_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    from rag.settings import load_settings
    from service.page_images import DEFAULT_WIDTH, render_page
    from service.runtime import Runtime

    rounds = 2 if quick else 5
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        text_pdf = _pages_of(datasets / "financebench" / "pdfs" / "3M_2018_10K.pdf", 50, 12, root / "10k.pdf")
        scans = sorted((datasets / "financebench_scanned_evidence" / "pdfs").glob("*.pdf"))[
            : 3 if quick else 6
        ]
        settings = load_settings(data_dir=root / "var", reranker="none")
        figures: dict[str, Any] = {}
        with Runtime(settings) as rt:
            docs = {"text-layer": [rt.ingestion.ingest_file(text_pdf, collection="bench").document]}
            docs["ocr"] = [rt.ingestion.ingest_file(p, collection="bench").document for p in scans]
            for source, documents in docs.items():
                cited = []
                for doc in documents:
                    ids = [f"{doc.id}:{n:06d}" for n in range(0, doc.chunks, max(1, doc.chunks // 8))]
                    cited += [(doc, s.chunk) for s in rt.index.get(ids)]
                lit: list[float] = []
                plain: list[float] = []
                for _ in range(rounds):
                    for doc, chunk in cited:
                        original = rt.index.originals.get(doc.id)
                        assert original is not None
                        t = time.perf_counter()
                        render_page(original, doc.kind, chunk.page_start, DEFAULT_WIDTH)
                        plain.append(time.perf_counter() - t)
                        t = time.perf_counter()
                        record = rt.index.page(doc.id, chunk.page_start)
                        assert record is not None and record.layout is not None
                        span = record.span(chunk.char_start, chunk.char_end)
                        rects = record.layout.highlight(*span) if span else []
                        render_page(original, doc.kind, chunk.page_start, DEFAULT_WIDTH, rects)
                        lit.append(time.perf_counter() - t)
                figures[source] = {
                    "renders": len(lit),
                    "highlighted": _ms(lit),
                    "plain": _ms(plain),
                    "width_px": DEFAULT_WIDTH,
                }
    out["page_render"] = figures
