"""The ``rag`` command. Errors print one line with their code; exit status says what happened.

Sub-commands are registered here, explicitly, in help order: each module offers a
``register(subparsers)`` that adds its parsers, each bound to the function that runs it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from cli import documents, mcp, migrate, models, query, reindex, serve, worker
from cli import eval as evaluation
from cli.common import EXIT_FAILED, EXIT_USAGE, Command, Subparsers, print_json
from rag.errors import RagError
from rag.logs import configure_logging
from rag.settings import load_settings

REGISTRATIONS: tuple[Callable[[Subparsers], None], ...] = (
    documents.register,  # ingest, documents, delete
    reindex.register,  # reindex
    models.register,  # models prepare
    migrate.register,  # migrate
    query.register,  # search, ask, doctor
    serve.register,  # serve
    worker.register,  # worker
    mcp.register,  # mcp
    evaluation.register,  # eval
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="Question answering over your documents.")
    parser.add_argument("--data-dir", help="override RAG_DATA_DIR")
    sub = parser.add_subparsers(dest="command", required=True)
    for register in REGISTRATIONS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    command: Command = args.handler
    try:
        overrides = {"data_dir": Path(args.data_dir)} if args.data_dir else {}
        settings = load_settings(**overrides)
    except Exception as exc:
        print(f"rag: invalid configuration: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_logging(settings.log_level, settings.log_json)
    try:
        return command(args, settings)
    except RagError as exc:
        if getattr(args, "json", False):
            print_json({"error": exc.to_dict()})
        print(f"rag: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
