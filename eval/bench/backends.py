"""Embedding backends side by side: raw throughput by forward batch size, and ingestion.

Each backend (``torch``, ``onnx``, ``onnx-int8``) ingests the same filing into a fresh data
directory at the shipped batch size; then the filing's chunk texts (about 150-200 tokens each)
are embedded directly by every backend at every batch size in ``BATCHES``. Backends and batch
sizes take turns, round after round (the machine is shared and noisy), and the figures are
medians. The batch axis is there because attention's scores grow with the padded batch
(batch x heads x tokens^2): on these chunks smaller batches are faster, int8 most of all.
The ONNX exports are made before the first round (their one-off cost is reported apart).

``python -m eval.bench.backends bench-results/embedding_backends.json`` writes the markdown
table next to that JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rag.embedder import BACKENDS, Embedder
from rag.settings import Settings, load_settings

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BATCHES = (1, 4, 8, 32)
"""1: no padding and no batch-mates; 32: the default before this measurement."""
CALL = 64
"""Texts per ``embed`` call, as ingestion hands them over (``ingest.pipeline._EMBED_BATCH``)."""


def shipped_batch() -> int:
    """The default ``RAG_EMBEDDING_BATCH_SIZE``, whatever the environment says."""
    return int(Settings.model_fields["embedding_batch_size"].default)


def _ingest_round(pdf: Path, backend: str, models: Path) -> tuple[float, float, list[str], int]:
    """One ingestion at the shipped batch, then its chunk texts embedded directly by the same
    embedder (the ratio of the two is taken within the round: the machine is noisy): seconds of
    each, the texts, their mean tokens."""
    from service.runtime import Runtime

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            data_dir=Path(tmp) / "var",
            reranker="none",
            embedding_backend=backend,
            embedding_batch_size=shipped_batch(),
            model_cache_dir=models,
        )
        with Runtime(settings) as rt:
            rt.embedder.embed(["warm up the model"])
            rt.ingestion.parsers.warm()  # as a running service has both warm
            started = time.perf_counter()
            result = rt.ingestion.ingest_file(pdf)
            seconds = time.perf_counter() - started
            stored = rt.index.get([f"{result.document.id}:{i:06d}" for i in range(result.chunks)])
            texts = [s.chunk.embedded_text for s in stored]
            raw_s = _raw_seconds(rt.embedder, texts)
            tokens = sum(rt.embedder.count_tokens_batch(texts)) / max(1, len(texts))
    return seconds, raw_s, texts, round(tokens)


def _embedder(backend: str, batch: int, models: Path) -> Embedder:
    """A private embedder at ``batch`` (not the process-wide cache, which holds six at most)."""
    from rag.embedder import TorchEmbedder, limit_threads
    from rag.onnx_embedder import OnnxEmbedder

    threads = load_settings().embedding_threads
    limit_threads(threads)
    if backend == BACKENDS[0]:
        return TorchEmbedder(MODEL, batch_size=batch, cache_dir=models)
    return OnnxEmbedder(MODEL, backend=backend, batch_size=batch, cache_dir=models, threads=threads)


def _raw_seconds(embedder: Embedder, texts: list[str]) -> float:
    embedder.embed(texts[:4])  # warm the shapes
    started = time.perf_counter()
    for start in range(0, len(texts), CALL):
        embedder.embed(texts[start : start + CALL])
    return time.perf_counter() - started


def _rotated(items: Sequence[str], turn: int) -> list[str]:
    """Each round starts with another backend, so a slow spell does not always hit the same one."""
    k = turn % len(items)
    return [*items[k:], *items[:k]]


def raw_table(
    seconds: Mapping[str, Mapping[int, Sequence[float]]], texts: int, shipped: int
) -> dict[str, dict[str, dict[str, float]]]:
    """Medians in texts/s by backend and batch, with ratios to torch at the same batch, at the
    shipped batch and at torch's best batch (the fairest best-against-best)."""
    rate = {b: {n: texts / statistics.median(s) for n, s in by.items()} for b, by in seconds.items()}
    torch = rate[BACKENDS[0]]
    torch_best = max(torch.values())
    table: dict[str, dict[str, dict[str, float]]] = {}
    for backend, by_batch in rate.items():
        table[backend] = {
            str(batch): {
                "texts_per_s": round(value, 1),
                "vs_torch_same_batch": round(value / torch[batch], 3),
                "vs_torch_shipped_batch": round(value / torch[shipped], 3),
                "vs_torch_best_batch": round(value / torch_best, 3),
            }
            for batch, value in sorted(by_batch.items())
        }
    return table


def best_batches(raw: Mapping[str, Mapping[str, Mapping[str, float]]]) -> dict[str, int]:
    return {b: int(max(by, key=lambda n: by[n]["texts_per_s"])) for b, by in raw.items()}


def backend_throughput(out: dict[str, Any], datasets: Path, quick: bool = False) -> None:
    pdf = datasets / "financebench" / "pdfs" / "AMCOR_2023Q2_10Q.pdf"
    ingest_rounds, raw_rounds = (1, 1) if quick else (5, 3)
    batches = (1, 32) if quick else BATCHES
    shipped = shipped_batch()
    batches = tuple(sorted({*batches, shipped}))
    with tempfile.TemporaryDirectory() as models_tmp:
        models = Path(models_tmp)
        export_s: dict[str, float] = {}
        for backend in BACKENDS[1:]:
            started = time.perf_counter()
            _embedder(backend, shipped, models)
            export_s[backend] = round(time.perf_counter() - started, 2)
        ingest: dict[str, list[tuple[float, float]]] = {b: [] for b in BACKENDS}
        texts: list[str] = []
        tokens = 0
        for turn in range(ingest_rounds):
            for backend in _rotated(BACKENDS, turn):
                seconds, raw_s, texts, tokens = _ingest_round(pdf, backend, models)
                ingest[backend].append((seconds, raw_s))
        embedders = {(b, n): _embedder(b, n, models) for b in BACKENDS for n in batches}
        raw: dict[str, dict[int, list[float]]] = {b: {n: [] for n in batches} for b in BACKENDS}
        for turn in range(raw_rounds):
            for batch in batches:
                for backend in _rotated(BACKENDS, turn + batch):
                    raw[backend][batch].append(_raw_seconds(embedders[(backend, batch)], texts))
    table = raw_table(raw, len(texts), shipped)
    out.update(
        document=pdf.name,
        chunks=len(texts),
        mean_tokens=tokens,
        threads=load_settings().embedding_threads,
        rounds={"ingestion": ingest_rounds, "raw": raw_rounds},
        shipped_batch=shipped,
        raw=table,
        best_batch=best_batches(table),
        backends=_ingestion_rows(ingest, table, len(texts), shipped, export_s),
    )


def _ingestion_rows(
    ingest: Mapping[str, Sequence[tuple[float, float]]],
    raw: Mapping[str, Mapping[str, Mapping[str, float]]],
    chunks: int,
    shipped: int,
    export_s: Mapping[str, float],
) -> dict[str, dict[str, float]]:
    """Ingestion at the shipped batch against raw embedding at the same batch: the median of each
    round's ratio (ingestion, then the same texts embedded directly), and, as a cross-check, the
    ratio to the raw table's median at that batch."""
    rows = {
        b: {"ingest_chunks_per_s": round(chunks / statistics.median(s for s, _ in r), 1)}
        for b, r in ingest.items()
    }
    for backend, row in rows.items():
        row["ingest_vs_torch"] = round(
            row["ingest_chunks_per_s"] / rows[BACKENDS[0]]["ingest_chunks_per_s"], 3
        )
        row["ingest_vs_raw"] = round(statistics.median(r / s for s, r in ingest[backend]), 3)
        row["ingest_vs_raw_table"] = round(
            row["ingest_chunks_per_s"] / raw[backend][str(shipped)]["texts_per_s"], 3
        )
        row["export_and_quantise_s"] = export_s.get(backend, 0.0)
    return rows


def markdown(result: Mapping[str, Any]) -> str:
    """The README's tables from one run's JSON."""
    raw, shipped = result["raw"], result["shipped_batch"]
    batches = list(raw[BACKENDS[0]])
    lines = [
        f"Raw embedding of the {result['chunks']} chunks of {result['document']} (mean "
        f"{result['mean_tokens']} tokens), texts/s, median of {result['rounds']['raw']} interleaved "
        f"rounds, {result['threads']} thread(s); x torch at the same batch, then x torch at batch {shipped} "
        "(shipped):",
        "",
        "| backend | " + " | ".join(f"batch {n}" for n in batches) + " |",
        "|---|" + "---|" * len(batches),
    ]
    for backend, by_batch in raw.items():
        cells = [
            f"{c['texts_per_s']} (x{c['vs_torch_same_batch']:.2f}, x{c['vs_torch_shipped_batch']:.2f})"
            for c in by_batch.values()
        ]
        lines.append(f"| {backend} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Ingestion of the same filing at batch {shipped}, median of {result['rounds']['ingestion']} rounds;"
        " ingestion / raw: the median of each round's ratio to the same texts embedded directly"
        " right after (in brackets: to the raw table above):",
        "",
        "| backend | ingestion, chunks/s | x torch | ingestion / raw | export + quantise (once) |",
        "|---|---|---|---|---|",
    ]
    for backend, row in result["backends"].items():
        export = f"{row['export_and_quantise_s']} s" if row["export_and_quantise_s"] else "-"
        table = f" ({row['ingest_vs_raw_table']:.2f})" if "ingest_vs_raw_table" in row else ""
        lines.append(
            f"| {backend} | {row['ingest_chunks_per_s']} | {row['ingest_vs_torch']:.2f} "
            f"| {row['ingest_vs_raw']:.2f}{table} | {export} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    """Write ``<name>.md`` beside each JSON given."""
    for name in argv:
        path = Path(name)
        path.with_suffix(".md").write_text(markdown(json.loads(path.read_text())))


if __name__ == "__main__":
    main(sys.argv[1:])
