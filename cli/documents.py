"""``rag ingest``, ``rag documents`` and ``rag delete``: the embedded index from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command, print_json
from rag.errors import RagError
from rag.settings import Settings

log = logging.getLogger("rag.cli")


def _walk(paths: list[str]) -> Iterator[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
        else:
            yield path


def cmd_ingest(args: argparse.Namespace, settings: Settings) -> int:
    from tqdm import tqdm

    from service.runtime import Runtime

    files = list(_walk(args.paths))
    summary: dict[str, Any] = {
        "documents": 0,
        "pages": 0,
        "ocr_pages": 0,
        "chunks": 0,
        "duplicates": 0,
        "failed": [],
        "seconds": 0.0,
        "items": [],
    }
    started = time.perf_counter()
    with Runtime(settings) as runtime:
        bar = tqdm(files, unit="file", disable=args.json or not sys.stderr.isatty(), file=sys.stderr)
        for path in bar:
            bar.set_postfix_str(path.name[:40])
            try:
                if not path.exists():
                    raise RagError(f"{path} does not exist")
                # intake (check, hash, sniff, deduplicate), then ingestion, in this process
                ingestion = runtime.ingestion_for(args.collection)  # the collection's own model
                result = ingestion.ingest_file(path, collection=args.collection)
            except RagError as exc:
                code = "not_found" if not path.exists() else exc.code
                summary["failed"].append({"path": str(path), "code": code, "message": exc.message})
                if not args.json:
                    tqdm.write(f"failed {path}: {code}: {exc.message}", file=sys.stderr)
                continue
            except Exception as exc:  # a bug must not stop the batch or print a traceback
                log.debug("unexpected ingestion failure", exc_info=True)
                summary["failed"].append({"path": str(path), "code": "internal_error", "message": str(exc)})
                continue
            if result.duplicate:
                summary["duplicates"] += 1
            else:
                summary["documents"] += 1
                summary["pages"] += result.pages
                summary["ocr_pages"] += result.ocr_pages
                summary["chunks"] += result.chunks
            summary["items"].append(
                {
                    "path": str(path),
                    "id": result.document.id,
                    "duplicate": result.duplicate,
                    "pages": result.pages,
                    "ocr_pages": result.ocr_pages,
                    "chunks": result.chunks,
                    "seconds": round(result.seconds, 3),
                }
            )
    summary["seconds"] = round(time.perf_counter() - started, 3)
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['documents']} documents, {summary['pages']} pages ({summary['ocr_pages']} OCR), "
            f"{summary['chunks']} chunks, {summary['duplicates']} duplicates skipped, "
            f"{len(summary['failed'])} failed, {summary['seconds']:.1f} s"
        )
        for fail in summary["failed"]:
            print(f"  failed {fail['path']}: {fail['code']}: {fail['message']}")
    return EXIT_FAILED if summary["failed"] else EXIT_OK


def cmd_documents(args: argparse.Namespace, settings: Settings) -> int:
    from rag.catalog import Catalog
    from rag.db import database

    catalog = Catalog(database(settings, "catalog"), migrate_now=False)
    docs = catalog.documents(args.collection)
    rows = [
        {
            "id": d.id,
            "name": d.name,
            "collection": d.collection,
            "pages": d.pages,
            "ocr_pages": d.ocr_pages,
            "chunks": d.chunks,
            "kind": d.kind,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(d.created_at)),
        }
        for d in docs
    ]
    if args.json:
        print_json(rows)
    else:
        for r in rows:
            print(
                f"{r['id']}  {r['collection']:<12} {r['pages']:>4}p {r['ocr_pages']:>3}ocr {r['chunks']:>5}c  {r['name']}"
            )
        print(f"{len(rows)} documents")
    return EXIT_OK


def cmd_delete(args: argparse.Namespace, settings: Settings) -> int:
    from service.runtime import Runtime

    with Runtime(settings) as runtime:
        runtime.index.delete(args.doc_id)
    print(f"deleted {args.doc_id}")
    return EXIT_OK


def register(sub: Subparsers) -> None:
    p = add_command(sub, "ingest", cmd_ingest, help="ingest files or folders")
    p.add_argument("paths", nargs="+")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")

    p = add_command(sub, "documents", cmd_documents, help="list documents")
    p.add_argument("--collection")
    p.add_argument("--json", action="store_true")

    p = add_command(sub, "delete", cmd_delete, help="delete a document")
    p.add_argument("doc_id")
