"""``rag serve``: the HTTP service under uvicorn, one process (the data directory's single writer)."""

from __future__ import annotations

import argparse
from typing import Any

from cli.common import EXIT_FAILED, EXIT_OK, Subparsers, add_command
from rag.settings import Settings


def register(sub: Subparsers) -> None:
    p = add_command(sub, "serve", cmd_serve, help="run the HTTP service")
    p.add_argument("--host", help="interface to listen on (default RAG_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default RAG_PORT, 8000)")


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from api.app import create_app
    from api.connections import protocol_with_header_deadline

    updates: dict[str, Any] = {}
    if args.host:
        updates["host"] = args.host
    if args.port is not None:
        updates["port"] = args.port
    settings = settings.model_copy(update=updates)
    if settings.auth_disabled:
        where = (
            "only this machine can reach it"
            if settings.host in ("127.0.0.1", "localhost", "::1")
            else ("ANYONE who can reach this address can read and change every document")
        )
        print(f"rag serve: authentication is DISABLED (RAG_AUTH_DISABLED=true); {where}.", flush=True)
    app = create_app(settings)
    app.state.service.start()  # a locked data directory fails here, as one line, before uvicorn starts
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep the project's logging (request ids, redaction)
        access_log=False,  # the app logs each request itself, with its request id
        timeout_graceful_shutdown=10,
        http=protocol_with_header_deadline(settings.header_timeout_s),
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=5,
    )
    server = uvicorn.Server(config)
    print(
        f"rag serve: listening on http://{settings.host}:{settings.port} (data in {settings.data_dir})",
        flush=True,
    )
    server.run()
    return EXIT_OK if server.started else EXIT_FAILED
