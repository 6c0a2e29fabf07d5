"""What reading each document in a bounded child process costs, next to reading it in-process.

Both modes ingest the same files into fresh data directories, in turn, round after round, so a
noisy neighbour slows them alike; figures are medians over the rounds. Two workloads: long
filings (the pages cross a pipe) and many small text files (where starting a child would show).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from rag.settings import load_settings

REPO = Path(__file__).resolve().parents[2]


def _ingest(paths: list[Path], mode: str) -> float:
    from service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(data_dir=Path(tmp) / "var", reranker="none", parse_isolation=mode)
        with Runtime(settings) as rt:
            rt.embedder.embed(["warm up the model"])
            started = time.perf_counter()
            for path in paths:
                rt.ingestion.ingest_file(path)
            return time.perf_counter() - started


def _small_texts(folder: Path, count: int) -> list[Path]:
    """``count`` distinct text files of a few paragraphs, cut from the repository's README."""
    words = (REPO / "README.md").read_text().split()
    paths = []
    for n in range(count):
        path = folder / f"note-{n:03d}.txt"
        path.write_text(f"Note {n}. " + " ".join(words[n * 150 : n * 150 + 300]))
        paths.append(path)
    return paths


def isolation_cost(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    names = ["AMCOR_2023Q2_10Q.pdf"] if quick else ["AMCOR_2023Q2_10Q.pdf", "3M_2018_10K.pdf"]
    filings = [datasets / "financebench" / "pdfs" / n for n in names]
    rounds = 1 if quick else 3
    with tempfile.TemporaryDirectory() as tmp:
        workloads = {"filings": filings, "small_texts": _small_texts(Path(tmp), 10 if quick else 40)}
        samples: dict[str, dict[str, list[float]]] = {w: {"inline": [], "process": []} for w in workloads}
        for _ in range(rounds):
            for workload, paths in workloads.items():
                for mode in ("inline", "process"):
                    samples[workload][mode].append(_ingest(paths, mode))
    for workload, modes in samples.items():
        inline, process = statistics.median(modes["inline"]), statistics.median(modes["process"])
        out[workload] = {
            "documents": len(workloads[workload]),
            "rounds": rounds,
            "inline_median_s": round(inline, 3),
            "process_median_s": round(process, 3),
            "process_vs_inline": round(process / inline, 3),
        }
