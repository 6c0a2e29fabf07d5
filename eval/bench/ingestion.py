"""Ingestion and lexical benchmarks (issue 2). Each function fills a dict with figures."""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pypdf import PdfReader, PdfWriter

from eval.bench.corpus import real_sentences_and_questions, synthetic_chunks
from rag.settings import load_settings


def _median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def _p95_ms(samples: list[float]) -> float:
    return round(sorted(samples)[int(0.95 * (len(samples) - 1))] * 1000, 3)


def ingestion_throughput(datasets: Path, out: dict[str, Any], pdf_names: list[str]) -> None:
    """Pipeline chunks/s on text-layer PDFs next to the raw embedder on the same chunks."""
    from service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "var", reranker="none")
        with Runtime(settings) as rt:
            rt.embedder.embed(["warm up the model"])
            pipeline_s, chunks_total, pages_total = 0.0, 0, 0
            all_chunks: list[str] = []
            for name in pdf_names:
                path = datasets / "financebench" / "pdfs" / name
                started = time.perf_counter()
                result = rt.ingestion.ingest_file(path)
                pipeline_s += time.perf_counter() - started
                chunks_total += result.chunks
                pages_total += result.pages
                stored = rt.index.get([f"{result.document.id}:{i:06d}" for i in range(result.chunks)])
                all_chunks.extend(s.chunk.text for s in stored)
            started = time.perf_counter()
            for i in range(0, len(all_chunks), 64):
                rt.embedder.embed(all_chunks[i : i + 64])
            raw_s = time.perf_counter() - started
    out["ingestion"] = {
        "documents": pdf_names,
        "pages": pages_total,
        "chunks": chunks_total,
        "pipeline_chunks_per_s": round(chunks_total / pipeline_s, 2),
        "raw_embedder_chunks_per_s": round(len(all_chunks) / raw_s, 2),
        "ratio_pipeline_to_raw": round((chunks_total / pipeline_s) / (len(all_chunks) / raw_s), 3),
        "goal": "ratio >= 0.8",
    }


_RSS_SCRIPT = """
import json, resource, sys, time
from pathlib import Path
from service.runtime import Runtime
from rag.settings import load_settings
settings = load_settings(data_dir=Path(sys.argv[1]), reranker="none")
def status_mib(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
with Runtime(settings) as rt:
    rt.embedder.embed(["warm up the model with a sentence"] * 64)
    rt.index.stats()
    before = status_mib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    t = time.perf_counter()
    r = rt.ingestion.ingest_file(Path(sys.argv[2]))
    import sqlite3
    with sqlite3.connect(settings.catalog_path) as db:  # the pages' text and word boxes, as stored
        stored, words = db.execute("SELECT SUM(length(text) + length(spans) + length(boxes)), 0 FROM pages").fetchone()
    print(json.dumps({"pages": r.pages, "chunks": r.chunks, "seconds": round(time.perf_counter() - t, 1),
                      "page_records_kib": round((stored or 0) / 1024, 1),
                      "rss_before_mib": round(before, 1),
                      "peak_rss_mib": round(status_mib("VmHWM"), 1),
                      "process_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def _concat_pages(sources: list[Path], pages: int, target: Path) -> None:
    writer = PdfWriter()
    while len(writer.pages) < pages:
        for src in sources:
            for page in PdfReader(src).pages:
                if len(writer.pages) >= pages:
                    break
                writer.add_page(page)
    with target.open("wb") as fh:
        writer.write(fh)


def peak_rss(datasets: Path, out: dict[str, Any], small: int = 30, large: int = 300) -> None:
    """Peak RSS while ingesting a large PDF next to a small one, each in a fresh process.

    The kernel's high-water mark is reset after the model is loaded and warm, so the peak is
    the one ingestion reaches, not the model load's (which would hide any growth).
    """
    sources = sorted((datasets / "financebench" / "pdfs").glob("*10K.pdf"))[:4]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pages in (small, large):
            pdf = Path(tmp) / f"p{pages}.pdf"
            _concat_pages(sources, pages, pdf)
            proc = subprocess.run(
                [sys.executable, "-c", _RSS_SCRIPT, str(Path(tmp) / f"var{pages}"), str(pdf)],
                capture_output=True,
                text=True,
                check=True,
            )
            results[pages] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["memory"] = {
        f"pages_{small}": results[small],
        f"pages_{large}": results[large],
        "peak_ratio": round(results[large]["peak_rss_mib"] / results[small]["peak_rss_mib"], 3),
        "goal": "peak_ratio <= 1.5",
    }


def lexical_latency(datasets: Path, out: dict[str, Any], sizes: tuple[int, ...] = (10_000, 100_000)) -> None:
    from rag.index.lexical import BM25Index

    sentences, questions = real_sentences_and_questions(datasets)
    queries = questions[::25][:300]
    figures: dict[str, Any] = {}
    for n in sizes:
        chunks = synthetic_chunks(sentences, n)
        index = BM25Index()
        started = time.perf_counter()
        for i in range(0, n, 100):  # documents of 100 chunks, as ingestion writes them
            ids = [str(j) for j in range(i, min(i + 100, n))]
            index.add(ids, [f"d{i}"] * len(ids), chunks[i : i + 100])
        build_s = time.perf_counter() - started
        for q in queries[:20]:
            index.search(q, 50)
        samples = []
        for q in queries:
            t = time.perf_counter()
            index.search(q, 50)
            samples.append(time.perf_counter() - t)
        figures[str(n)] = {
            "p50_ms": _median_ms(samples),
            "p95_ms": _p95_ms(samples),
            "build_s": round(build_s, 2),
            "queries": len(samples),
        }
    out["lexical"] = {**figures, "k": 50, "goal": "p50 <= 10 ms at 100k"}


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
