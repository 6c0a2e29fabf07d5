"""``rag mcp``: the MCP tools over stdio, for a client that starts the server itself (Claude Desktop).

The service runs in this process, as ``rag serve`` would: it is the data directory's writer (it
stores answers and runs ingestion jobs), so it cannot share a data directory with a running
``rag serve``; point the client at that server's ``/mcp`` instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from cli.common import EXIT_OK, Subparsers, add_command
from rag.settings import Settings

API_KEY_ENV = "RAG_MCP_API_KEY"


def register(sub: Subparsers) -> None:
    p = add_command(sub, "mcp", cmd_mcp, help="serve the MCP tools (search, ask, documents) over stdio")
    p.add_argument(
        "--api-key",
        help=f"act as this API key's tenant (default: ${API_KEY_ENV}; without one, the local "
        "principal, which needs RAG_AUTH_DISABLED=true)",
    )


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    from api.mcp import serve_stdio, stdio_principal
    from api.service import Service

    service = Service(settings)
    # A missing or unknown key fails here, as one line, before any MCP traffic.
    principal = stdio_principal(service, args.api_key or os.environ.get(API_KEY_ENV))
    asyncio.run(serve_stdio(service, principal))
    return EXIT_OK
