"""OCR pages/s with one tesseract at a time and with the pool, on the scanned FinanceBench pages.

The scanned evidence pages are joined into one PDF and read by the PDF loader, each mode in a
fresh process, alternating, round after round (medians). Peak RSS is of the whole tree, the
reader and the tesseract processes it runs at once, sampled every 50 ms (``ru_maxrss`` of a
child counts the parent's pages at fork, before tesseract is exec'd, so it cannot say).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter

REPO = Path(__file__).resolve().parents[2]


def scanned_pages_pdf(datasets: Path, count: int, dest: Path) -> Path:
    """The first ``count`` scanned evidence pages (sorted by name) as one PDF."""
    folder = datasets / "financebench_scanned_evidence" / "pdfs"
    writer = PdfWriter()
    for path in sorted(folder.glob("*.pdf"))[:count]:
        writer.add_page(PdfReader(path).pages[0])
    with dest.open("wb") as handle:
        writer.write(handle)
    return dest


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and its direct children (the tesseract processes)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        if pid == root or int(fields[1]) == root:  # fields[1]: the parent's pid
            total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # fields[21]: rss in pages
    return total / 2**20


def _read(pdf: Path, workers: int) -> dict[str, Any]:
    """In this process: read every page with ``workers`` OCR processes at once."""
    from ingest.loaders import load_document
    from rag.settings import load_settings

    settings = load_settings(ocr_workers=workers, parse_isolation="inline")
    peak, done = [0.0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    pages = list(load_document(pdf, settings).pages)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    return {
        "seconds": seconds,
        "pages": len(pages),
        "ocr_pages": sum(p.source == "ocr" for p in pages),
        "reader_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "tree_peak_rss_mb": peak[0],
    }


def _run_in_child(pdf: Path, workers: int) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "eval.bench.ocr_pool", str(pdf), str(workers)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run_ocr_pool_bench(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    cores = os.cpu_count() or 1
    rounds = 1 if quick else 2
    with tempfile.TemporaryDirectory() as tmp:
        pdf = scanned_pages_pdf(datasets, 8 if quick else 24, Path(tmp) / "scanned.pdf")
        runs: dict[int, list[dict[str, Any]]] = {1: [], cores: []}
        for _ in range(rounds):
            for workers in runs:
                runs[workers].append(_run_in_child(pdf, workers))
    rows = {}
    for workers, samples in runs.items():
        seconds = statistics.median(r["seconds"] for r in samples)
        rows[f"{workers}_process" if workers == 1 else f"pool_of_{workers}"] = {
            "pages": samples[0]["pages"],
            "ocr_pages": samples[0]["ocr_pages"],
            "median_s": round(seconds, 2),
            "pages_per_s": round(samples[0]["pages"] / seconds, 3),
            "reader_peak_rss_mb": round(max(r["reader_peak_rss_mb"] for r in samples), 1),
            "tree_peak_rss_mb": round(max(r["tree_peak_rss_mb"] for r in samples), 1),
        }
    one, pool = rows["1_process"], rows[f"pool_of_{cores}"] if cores > 1 else rows["1_process"]
    out["cores"] = cores
    out["rounds"] = rounds
    out["modes"] = rows
    out["pool_vs_one"] = round(pool["pages_per_s"] / one["pages_per_s"], 3)


if __name__ == "__main__":
    print(json.dumps(_read(Path(sys.argv[1]), int(sys.argv[2]))))
