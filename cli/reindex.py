"""``rag reindex``: a collection's chunks embedded anew with another model, switched over atomically."""

from __future__ import annotations

import argparse
import sys

from cli.common import EXIT_OK, Subparsers, add_command, print_json
from rag.settings import Settings


def cmd_reindex(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from service.runtime import Runtime

    collection = args.collection or settings.default_collection
    with Runtime(settings) as runtime:
        bar = tqdm(unit="chunk", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.n = done
            bar.refresh()

        try:
            report = runtime.reindex(collection, args.model, force=args.force, progress=progress)
        finally:
            bar.close()
    if args.json:
        print_json(report.to_dict())
    elif not report.switched:
        print(f"{collection}: already indexed with {report.model}; nothing to do (--force re-embeds anyway)")
    else:
        note = f", {report.over_token_limit} longer than the model reads" if report.over_token_limit else ""
        print(
            f"{collection}: {report.documents} documents, {report.chunks} chunks re-embedded{note};"
            f" switched from {report.previous} to {report.model} in {report.seconds:.1f} s"
        )
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = add_command(
        sub,
        "reindex",
        cmd_reindex,
        help="re-embed a collection with another model and switch to it (queries keep working)",
    )
    p.add_argument("--collection", help="the collection (default: RAG_DEFAULT_COLLECTION)")
    p.add_argument("--model", required=True, help="a local path, a bundled model or a hub name")
    p.add_argument("--force", action="store_true", help="re-embed even if the collection has this model")
    p.add_argument("--json", action="store_true")
