"""Embedding backends side by side: raw throughput on the same chunks, and ingestion against it.

Each backend (``torch``, ``onnx``, ``onnx-int8``) ingests the same filing into a fresh data
directory, then embeds that filing's stored chunk texts (about 200 tokens each) directly; the
backends take turns, round after round, and the figures are medians. The ONNX exports are made
before the first round (their one-off cost is reported apart).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.embedder import BACKENDS
from rag.settings import load_settings


def _one_round(pdf: Path, backend: str, models: Path) -> dict[str, float]:
    from service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "var", reranker="none", embedding_backend=backend, model_cache_dir=models
        )
        with Runtime(settings) as rt:
            rt.embedder.embed(["warm up the model"])
            started = time.perf_counter()
            result = rt.ingestion.ingest_file(pdf)
            ingest_s = time.perf_counter() - started
            stored = rt.index.get([f"{result.document.id}:{i:06d}" for i in range(result.chunks)])
            texts = [s.chunk.embedded_text for s in stored]
            started = time.perf_counter()
            for start in range(0, len(texts), 64):
                rt.embedder.embed(texts[start : start + 64])
            raw_s = time.perf_counter() - started
    return {
        "ingest_s": ingest_s,
        "raw_s": raw_s,
        "chunks": float(result.chunks),
        "pages": float(result.pages),
    }


def backend_throughput(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    from rag.embedder import get_embedder

    pdf = datasets / "financebench" / "pdfs" / "AMCOR_2023Q2_10Q.pdf"
    rounds = 1 if quick else 2
    with tempfile.TemporaryDirectory() as models_tmp:
        models = Path(models_tmp)
        export_s: dict[str, float] = {}
        for backend in BACKENDS[1:]:
            started = time.perf_counter()
            get_embedder("sentence-transformers/all-MiniLM-L6-v2", cache_dir=models, backend=backend)
            export_s[backend] = round(time.perf_counter() - started, 2)
        samples: dict[str, list[dict[str, float]]] = {b: [] for b in BACKENDS}
        for _ in range(rounds):
            for backend in BACKENDS:
                samples[backend].append(_one_round(pdf, backend, models))
    rows: dict[str, dict[str, float]] = {}
    for backend, runs in samples.items():
        chunks = runs[0]["chunks"]
        ingest = statistics.median(r["ingest_s"] for r in runs)
        raw = statistics.median(r["raw_s"] for r in runs)
        rows[backend] = {
            "chunks": chunks,
            "raw_chunks_per_s": round(chunks / raw, 1),
            "ingest_chunks_per_s": round(chunks / ingest, 1),
            "ingest_vs_raw": round(raw / ingest, 3),
            "export_and_quantise_s": export_s.get(backend, 0.0),
        }
    for row in rows.values():
        row["raw_vs_torch"] = round(row["raw_chunks_per_s"] / rows["torch"]["raw_chunks_per_s"], 3)
        row["ingest_vs_torch"] = round(row["ingest_chunks_per_s"] / rows["torch"]["ingest_chunks_per_s"], 3)
    out["document"] = pdf.name
    out["rounds"] = rounds
    out["backends"] = rows
