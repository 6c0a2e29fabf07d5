"""``rag models prepare``: the embedding model made ready before it is needed.

A service image or an offline machine runs it once at build time, so the first ingestion does
not pay for extracting a bundled model or exporting and quantising it for onnxruntime (seconds
to a minute, see the README's "Embedding backends"); the service would do the same on first use.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cli.common import EXIT_OK, Subparsers, add_command, print_json
from rag.embedder import BACKENDS
from rag.settings import Settings


def cmd_prepare(args: argparse.Namespace, settings: Settings) -> int:
    from rag.embedder import get_embedder

    model = args.model or settings.embedding_model
    backend = args.backend or settings.embedding_backend
    started = time.perf_counter()
    embedder = get_embedder(  # as the service makes it (``service.runtime``), so it finds the same files
        model,
        settings.embedding_device,
        settings.embedding_batch_size,
        settings.models_dir,
        backend,
        settings.embedding_threads,
    )
    embedder.embed_query("ready")  # loads every part the first query would
    onnx: Path | None = getattr(embedder, "path", None)
    report = {
        "model": model,
        "backend": backend,
        "dim": embedder.dim,
        "onnx_file": str(onnx) if onnx is not None else None,
        "seconds": round(time.perf_counter() - started, 2),
    }
    if args.json:
        print_json(report)
    else:
        where = f", {onnx}" if onnx is not None else ""
        print(f"{model} ({backend}, {embedder.dim} dims) ready in {report['seconds']} s{where}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    models = sub.add_parser("models", help="prepare the embedding model (extract, export, quantise)")
    actions = models.add_subparsers(dest="action", required=True)
    prepare = add_command(
        actions, "prepare", cmd_prepare, help="make the configured (or given) model ready for its backend"
    )
    prepare.add_argument("--model", help="default: RAG_EMBEDDING_MODEL")
    prepare.add_argument("--backend", choices=BACKENDS, help="default: RAG_EMBEDDING_BACKEND")
    prepare.add_argument("--json", action="store_true")
