"""What each evidence lever costs at ingestion, side by side on the same filings.

The configurations are ingested in turn, round after round, into fresh data directories, so a
noisy neighbour slows them alike; the figures are medians over the rounds. Index size is what
each configuration stores: chunks, the text Chroma holds, and the lexical index on disk.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.settings import load_settings

CONFIGS: dict[str, dict[str, Any]] = {
    "base": {"tables": False, "context_headers": "off"},
    "tables": {"tables": True, "context_headers": "off"},
    "headers (lexical)": {"tables": False, "context_headers": "lexical"},
    "headers (embedded too)": {"tables": False, "context_headers": "both"},
    "shipped": {"tables": True, "context_headers": "lexical"},
}
"""The ingestion-side levers; naming and the vocabulary cost nothing at ingestion (query time only)."""


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _ingest_once(pdfs: list[Path], overrides: dict[str, Any]) -> dict[str, float]:
    from service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "var", reranker="none", **overrides)
        with Runtime(settings) as rt:
            rt.embedder.embed(["warm up the model"])
            seconds, chunks, pages, text_chars = 0.0, 0, 0, 0
            for path in pdfs:
                started = time.perf_counter()
                result = rt.ingestion.ingest_file(path)
                seconds += time.perf_counter() - started
                chunks += result.chunks
                pages += result.pages
                stored = rt.index.get([f"{result.document.id}:{i:06d}" for i in range(result.chunks)])
                text_chars += sum(len(s.chunk.text) + len(s.chunk.context) for s in stored)
        lexical_bytes = _folder_bytes(Path(tmp) / "var" / "lexical")
    return {
        "seconds": seconds,
        "chunks": chunks,
        "pages": pages,
        "stored_text_chars": text_chars,
        "lexical_bytes": lexical_bytes,
    }


def lever_costs(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    names = ["AMCOR_2023Q2_10Q.pdf"] if quick else ["AMCOR_2023Q2_10Q.pdf", "3M_2018_10K.pdf"]
    pdfs = [datasets / "financebench" / "pdfs" / n for n in names]
    rounds = 1 if quick else 2
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in CONFIGS}
    for _ in range(rounds):
        for name, overrides in CONFIGS.items():
            samples[name].append(_ingest_once(pdfs, overrides))
    rows: dict[str, dict[str, float]] = {}
    for name, runs in samples.items():
        seconds = statistics.median(r["seconds"] for r in runs)
        first = runs[0]
        rows[name] = {
            "median_s": round(seconds, 2),
            "pages_per_s": round(first["pages"] / seconds, 2),
            "chunks_per_s": round(first["chunks"] / seconds, 2),
            "chunks": first["chunks"],
            "stored_text_chars": first["stored_text_chars"],
            "lexical_bytes": first["lexical_bytes"],
        }
    base = rows["base"]
    for row in rows.values():
        row["time_vs_base"] = round(row["median_s"] / base["median_s"], 3)
        row["chunks_vs_base"] = round(row["chunks"] / base["chunks"], 3)
    out["ingestion_levers"] = {"documents": names, "rounds": rounds, "configs": rows}
